/**
 * TLS for the peer and client ports, on `node:tls`, the same on Node, Bun and Deno.
 *
 * Certificates are PEM files named by path (`ca`, `cert`, `key`). A member's certificate names its
 * member id in a subjectAltName `DNS:` entry (`DNS:a` for member `a`); the common name is not
 * consulted. Only certificates signed directly by the CA in `ca` are accepted (no intermediates).
 *
 * Why the acceptor checks the certificate itself: a TLS socket wrapped around an accepted
 * `net.Socket` (which lets us look at the first byte first: plaintext on a TLS port is refused with
 * a reason before any TLS parsing) is not verified by Node and Deno (`authorized` stays false,
 * `rejectUnauthorized` is not applied), while Bun verifies it. So every end verifies the peer's
 * certificate here, with `X509Certificate`: signed by the CA (`verify` with the CA's key and
 * `checkIssued`), within its validity dates, and naming the expected member. The dialer lets the
 * runtime verify the chain too (`rejectUnauthorized`), then checks the same way.
 *
 * Rotation: `TlsReloader` re-reads the files when their modification times change (polled) or when
 * `reload()` is called (on SIGHUP, say); new connections use the new files, established ones keep
 * theirs. A reload that fails (a half-written file) keeps the previous material and logs why.
 *
 * @example
 * ```ts
 * const reloader = new TlsReloader({ ca: 'ca.crt', cert: 'a.crt', key: 'a.key' }, 'tls', console, 1000);
 * const socket = tls.connect({ host, port, ...reloader.current.dialOptions });
 * ```
 * @module
 */
import type { Buffer } from 'node:buffer';
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type * as net from 'node:net';
import * as tls from 'node:tls';
import { clearInterval, setInterval } from 'node:timers';
import * as v from 'valibot';
import type { Logger } from '../base/logger.ts';

/** PEM file paths: the CA that signs the cluster's certificates, this end's certificate and key. */
export type TlsFiles = { ca: string; cert: string; key: string };

const PathSchema: v.SchemaWithPipe<
  readonly [
    v.StringSchema<undefined>,
    v.MinLengthAction<string, 1, undefined>,
    v.MaxLengthAction<string, 4096, undefined>,
  ]
> = v.pipe(v.string(), v.minLength(1), v.maxLength(4096));

/** The schema of `TlsFiles`, for the options of the transport, the server and the client. */
export const TlsFilesSchema: v.StrictObjectSchema<{
  readonly ca: typeof PathSchema;
  readonly cert: typeof PathSchema;
  readonly key: typeof PathSchema;
}, undefined> = v.strictObject({ ca: PathSchema, cert: PathSchema, key: PathSchema });

/** The first byte of a TLS handshake record (ContentType handshake). */
export const tlsHandshakeByte = 0x16;

/** How the files are named in errors: option names by default, flags on the command line. */
export type TlsFileLabels = { ca: string; cert: string; key: string };

/** The files read and parsed: what connections are made with. */
export type TlsMaterial = {
  readonly ca: X509Certificate;
  readonly context: tls.SecureContext;
  /** Modification times of the three files when read (ms), to notice a change. */
  readonly mtimesMs: readonly number[];
};

function readLabelled(path: string, label: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    const code = (error as { code?: string }).code ?? (error as Error).message;
    throw new Error(`Cannot read TLS file ${label} ${path}: ${code}`);
  }
}

/**
 * Read and parse `files`; an unreadable or unparsable file is an `Error` naming its label (the
 * option or flag) and path.
 *
 * @example
 * ```ts
 * loadTls({ ca: 'ca.crt', cert: 'a.crt', key: 'a.key' }, { ca: '--peer-tls-ca', cert: '--peer-tls-cert', key: '--peer-tls-key' });
 * ```
 */
export function loadTls(
  files: { ca: string; cert?: string | undefined; key?: string | undefined },
  labels: TlsFileLabels,
): TlsMaterial {
  const paths = [files.ca, files.cert, files.key].filter((p) => p !== undefined);
  const mtimesMs = paths.map((p) => mtimeMs(p));
  const ca = readLabelled(files.ca, labels.ca);
  if ((files.cert === undefined) !== (files.key === undefined)) {
    throw new TypeError(
      `Invalid TLS files: give both ${labels.cert} and ${labels.key}, or neither`,
    );
  }
  if (files.cert === undefined || files.key === undefined) {
    let caOnly: X509Certificate;
    try {
      caOnly = new X509Certificate(ca);
    } catch (error) {
      throw new Error(`Invalid TLS file ${labels.ca} ${files.ca}: ${(error as Error).message}`);
    }
    return { ca: caOnly, context: tls.createSecureContext({ ca }), mtimesMs };
  }
  const cert = readLabelled(files.cert, labels.cert);
  const key = readLabelled(files.key, labels.key);
  let caCert: X509Certificate;
  try {
    caCert = new X509Certificate(ca);
  } catch (error) {
    throw new Error(`Invalid TLS file ${labels.ca} ${files.ca}: ${(error as Error).message}`);
  }
  try {
    new X509Certificate(cert);
  } catch (error) {
    throw new Error(`Invalid TLS file ${labels.cert} ${files.cert}: ${(error as Error).message}`);
  }
  let context: tls.SecureContext;
  try {
    context = tls.createSecureContext({ ca, cert, key });
  } catch (error) {
    throw new Error(
      `Invalid TLS files ${labels.cert} ${files.cert} and ${labels.key} ${files.key}: ${
        (error as Error).message
      }`,
    );
  }
  return { ca: caCert, context, mtimesMs };
}

function mtimeMs(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -1;
  }
}

/** The member ids a certificate names: its subjectAltName `DNS:` entries. */
export function certificateNames(certificate: X509Certificate): string[] {
  const san = certificate.subjectAltName ?? '';
  return san.split(',').map((s) => s.trim()).filter((s) => s.startsWith('DNS:')).map((s) =>
    s.slice(4)
  );
}

/**
 * Check the certificate `socket`'s peer presented: signed by `material`'s CA, within its validity
 * dates at `nowMs`, and (when `expected` is given) naming `expected`. Returns the names it holds,
 * or the reason it is refused.
 */
export function checkPeerCertificate(
  socket: tls.TLSSocket,
  material: TlsMaterial,
  expected: string | null,
  nowMs: number = Date.now(),
): { ok: true; names: string[] } | { ok: false; reason: string } {
  const presented = socket.getPeerCertificate(true) as tls.DetailedPeerCertificate | null;
  if (presented === null || presented.raw === undefined || presented.raw.byteLength === 0) {
    return { ok: false, reason: 'no certificate presented' };
  }
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(presented.raw);
  } catch (error) {
    return { ok: false, reason: `unparsable certificate: ${(error as Error).message}` };
  }
  const subject = certificate.subject.replace(/\n/g, ', ');
  if (!certificate.checkIssued(material.ca) || !certificate.verify(material.ca.publicKey)) {
    return {
      ok: false,
      reason: `certificate ${subject} is not signed by the cluster's CA (${
        material.ca.subject.replace(/\n/g, ', ')
      })`,
    };
  }
  const fromMs = Date.parse(certificate.validFrom);
  const toMs = Date.parse(certificate.validTo);
  if (!(nowMs >= fromMs)) {
    return {
      ok: false,
      reason: `certificate ${subject} is not valid before ${certificate.validFrom}`,
    };
  }
  if (!(nowMs <= toMs)) {
    return { ok: false, reason: `certificate ${subject} expired ${certificate.validTo}` };
  }
  const names = certificateNames(certificate);
  if (expected !== null && !names.includes(expected)) {
    return {
      ok: false,
      reason: `certificate names ${
        names.length === 0 ? 'no member' : names.join(', ')
      }, not ${expected}`,
    };
  }
  return { ok: true, names };
}

/**
 * Accept TLS on `raw`, a freshly accepted socket: the first chunk must start a TLS handshake
 * record (else `onRefused` with the reason, and the socket is destroyed); then the handshake runs
 * with `material` asking for a client certificate, and `onSecure` gets the TLS socket once it is
 * done (its certificate is not yet checked: see `checkPeerCertificate`). Any TLS error destroys
 * both sockets and calls `onRefused`.
 */
export function acceptTls(
  raw: net.Socket,
  material: () => TlsMaterial,
  onSecure: (socket: tls.TLSSocket) => void,
  onRefused: (reason: string) => void,
): void {
  raw.on('error', () => {});
  raw.once('data', (chunk: Buffer) => {
    if (chunk[0] !== tlsHandshakeByte) {
      onRefused(
        `Plaintext on a TLS port: first byte 0x${
          (chunk[0] ?? 0).toString(16).padStart(2, '0')
        } is not a TLS handshake record`,
      );
      raw.destroy();
      return;
    }
    raw.pause();
    raw.unshift(chunk);
    const socket = new tls.TLSSocket(raw, {
      isServer: true,
      secureContext: material().context,
      requestCert: true,
      // Checked by `checkPeerCertificate` on every runtime (see the module comment).
      rejectUnauthorized: false,
    });
    let done = false;
    socket.on('error', (error: Error & { code?: string }) => {
      socket.destroy();
      raw.destroy();
      if (done) return;
      done = true;
      onRefused(`TLS handshake failed: ${error.code ?? error.message}`);
    });
    socket.once('secure', () => {
      if (done) return;
      done = true;
      onSecure(socket);
    });
    // No `raw.resume()`: the TLS socket reads the connection now (on Node it takes over the
    // handle), and a flowing `raw` would steal its bytes.
  });
}

/** True when `chunk` starts like a TLS handshake (a ClientHello): 0x16 0x03. */
export function looksLikeTls(chunk: Uint8Array): boolean {
  return chunk[0] === tlsHandshakeByte && chunk[1] === 0x03;
}

/**
 * Holds the current `TlsMaterial` for `files` and re-reads them when their modification times
 * change (checked every `pollMs`; 0: only on `reload()`).
 */
export class TlsReloader {
  readonly #files: TlsFiles;
  readonly #labels: TlsFileLabels;
  readonly #logger: Pick<Logger, 'warn' | 'info'>;
  readonly #timer: ReturnType<typeof setInterval> | null;
  #current: TlsMaterial;
  /** The modification times a reload last failed at: polled again only once they change. */
  #failedMtimesMs: readonly number[] | null = null;
  /** Successful reloads since start. */
  reloadCount = 0;

  constructor(
    files: TlsFiles,
    labels: TlsFileLabels,
    logger: Pick<Logger, 'warn' | 'info'>,
    pollMs: number,
  ) {
    this.#files = files;
    this.#labels = labels;
    this.#logger = logger;
    this.#current = loadTls(files, labels);
    if (pollMs > 0) {
      this.#timer = setInterval(() => this.#poll(), pollMs);
      this.#timer.unref();
    } else this.#timer = null;
  }

  get current(): TlsMaterial {
    return this.#current;
  }

  /** Re-read the files now; on failure the previous material stays and the reason is logged. */
  reload(): boolean {
    try {
      this.#current = loadTls(this.#files, this.#labels);
      this.#failedMtimesMs = null;
      this.reloadCount += 1;
      this.#logger.info(`TLS certificates reloaded from ${this.#files.cert}`);
      return true;
    } catch (error) {
      this.#failedMtimesMs = this.#mtimes();
      this.#logger.warn(
        `TLS reload failed, keeping the previous certificates: ${(error as Error).message}`,
      );
      return false;
    }
  }

  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
  }

  #mtimes(): number[] {
    return [this.#files.ca, this.#files.cert, this.#files.key].map((p) => mtimeMs(p));
  }

  #poll(): void {
    const now = this.#mtimes();
    const same = (seen: readonly number[] | null) =>
      seen !== null && now.every((m, i) => m === seen[i]);
    // Unchanged since the last load, or since the last failed reload (logged once, not per poll).
    if (same(this.#current.mtimesMs) || same(this.#failedMtimesMs)) return;
    this.reload();
  }
}

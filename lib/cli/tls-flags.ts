/**
 * The command line's TLS and authentication flags: `serve`'s `--peer-tls-*`, `--client-tls-*`,
 * `--client-auth`, `--client-token-file`, and every client command's `--tls-ca`, `--tls-cert`,
 * `--tls-key`, `--token-file`. Files are read once, here, so that a missing or unreadable one is a
 * `UsageError` naming the flag and the path before anything starts.
 *
 * @example
 * ```ts
 * const options = serveTlsOptions({ 'peer-tls-ca': 'ca.crt', 'peer-tls-cert': 'a.crt', 'peer-tls-key': 'a.key', 'client-auth': 'none' });
 * ```
 * @module
 */
import { readFileSync } from 'node:fs';
import { loadTls, type TlsFiles } from '../transport/tls.ts';
import { type FlagSpec, UsageError } from './args.ts';

/** `serve`'s TLS and authentication flags. */
export const serveTlsFlags: Record<string, FlagSpec> = {
  'peer-tls-ca': {
    kind: 'string',
    help: 'peer port mutual TLS: PEM file of the CA that signs every member certificate',
  },
  'peer-tls-cert': {
    kind: 'string',
    help: "peer port: this member's certificate (PEM), naming its id in a subjectAltName DNS entry",
  },
  'peer-tls-key': { kind: 'string', help: "peer port: this member's private key (PEM)" },
  'client-tls-ca': {
    kind: 'string',
    help: 'client port TLS: PEM file of the CA that signs client certificates (--client-auth cert)',
  },
  'client-tls-cert': { kind: 'string', help: 'client port: the certificate it presents (PEM)' },
  'client-tls-key': { kind: 'string', help: 'client port: its private key (PEM)' },
  'client-auth': {
    kind: 'string',
    help: 'who may use the client port: none, cert (client certificates) or token',
    default: 'none',
  },
  'client-token-file': {
    kind: 'string',
    help: 'with --client-auth token: file holding the bearer token (at least 16 characters)',
  },
};

/** Every client command's TLS and authentication flags. */
export const clientTlsFlags: Record<string, FlagSpec> = {
  'tls-ca': { kind: 'string', help: "TLS to the client ports: the cluster CA's certificate (PEM)" },
  'tls-cert': { kind: 'string', help: 'client certificate (PEM), for --client-auth cert' },
  'tls-key': { kind: 'string', help: 'client private key (PEM), with --tls-cert' },
  'token-file': { kind: 'string', help: 'file holding the bearer token, for --client-auth token' },
};

function str(flags: Record<string, unknown>, name: string): string | undefined {
  const value = flags[name];
  return value === undefined ? undefined : String(value);
}

/** Three flags naming `ca`, `cert`, `key`: all or none (`certOptional`: ca alone too). */
function filesOf(
  flags: Record<string, unknown>,
  prefix: string,
  certOptional: boolean,
): { ca: string; cert?: string; key?: string } | undefined {
  const [ca, cert, key] = ['ca', 'cert', 'key'].map((p) => str(flags, `${prefix}-${p}`));
  if (ca === undefined && cert === undefined && key === undefined) return undefined;
  if (ca === undefined) throw new UsageError(`Flag --${prefix}-ca is needed with --${prefix}-cert`);
  if ((cert === undefined) !== (key === undefined) || (!certOptional && cert === undefined)) {
    throw new UsageError(
      `Flags --${prefix}-cert and --${prefix}-key go together${
        certOptional ? '' : `, with --${prefix}-ca`
      }`,
    );
  }
  const labels = { ca: `--${prefix}-ca`, cert: `--${prefix}-cert`, key: `--${prefix}-key` };
  const files = cert === undefined ? { ca } : { ca, cert, key: key! };
  try {
    loadTls(files, labels);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  return files;
}

/** Read the token in the file of flag `name` (one trailing newline dropped). */
function tokenOf(flags: Record<string, unknown>, name: string): string | undefined {
  const path = str(flags, name);
  if (path === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as { code?: string }).code ?? (error as Error).message;
    throw new UsageError(`Flag --${name}: cannot read ${path}: ${code}`);
  }
  const token = text.replace(/\r?\n$/, '');
  if (token.length === 0) throw new UsageError(`Flag --${name}: ${path} is empty`);
  return token;
}

/** `serve`'s TLS options for `RaftServer.start`, checked (a `UsageError` naming the flag). */
export function serveTlsOptions(flags: Record<string, unknown>): {
  peerTls?: TlsFiles;
  clientTls?: TlsFiles;
  clientAuth: 'none' | 'cert' | 'token';
  clientToken?: string;
} {
  const auth = String(flags['client-auth'] ?? 'none');
  if (auth !== 'none' && auth !== 'cert' && auth !== 'token') {
    throw new UsageError(
      `Flag --client-auth: expected none, cert or token, got ${JSON.stringify(auth)}`,
    );
  }
  const peerTls = filesOf(flags, 'peer-tls', false) as TlsFiles | undefined;
  const clientTls = filesOf(flags, 'client-tls', false) as TlsFiles | undefined;
  if (auth === 'cert' && clientTls === undefined) {
    throw new UsageError(
      'Flag --client-auth cert needs --client-tls-ca, --client-tls-cert and --client-tls-key',
    );
  }
  const token = tokenOf(flags, 'client-token-file');
  if ((auth === 'token') !== (token !== undefined)) {
    throw new UsageError(
      'Flag --client-token-file goes with --client-auth token (and it needs one)',
    );
  }
  if (token !== undefined && token.length < 16) {
    throw new UsageError(
      `Flag --client-token-file: the token has ${token.length} characters, at least 16 needed`,
    );
  }
  return {
    ...(peerTls === undefined ? {} : { peerTls }),
    ...(clientTls === undefined ? {} : { clientTls }),
    clientAuth: auth,
    ...(token === undefined ? {} : { clientToken: token }),
  };
}

/** A client command's TLS options for `RaftClient.connect`, checked. */
export function clientTlsOptions(flags: Record<string, unknown>): {
  tls?: { ca: string; cert?: string; key?: string };
  token?: string;
} {
  const tls = filesOf(flags, 'tls', true);
  const token = tokenOf(flags, 'token-file');
  return { ...(tls === undefined ? {} : { tls }), ...(token === undefined ? {} : { token }) };
}

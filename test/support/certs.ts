/**
 * Real certificates for the TLS tests and the TLS bench, made with the `openssl` command line in a
 * temporary folder: a CA, member certificates naming each member in a subjectAltName DNS entry, a
 * second CA, and an expired certificate. `openssl` missing: `opensslMissing()` says so.
 *
 * @example
 * ```ts
 * const certs = makeCerts(['a', 'b']);
 * certs.files('a'); // { ca, cert, key } paths
 * ```
 * @module
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TlsFiles } from '../../lib/transport/tls.ts';

const openssl = 'openssl';

/** Why certificates cannot be made here (no `openssl` on the PATH), or null. */
export function opensslMissing(): string | null {
  try {
    execFileSync(openssl, ['version'], { stdio: 'pipe' });
    return null;
  } catch (error) {
    return `openssl is not available (${
      (error as Error).message
    }): the TLS tests need it to make certificates`;
  }
}

function run(args: string[]): void {
  execFileSync(openssl, args, { stdio: 'pipe' });
}

const keyArgs = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A temporary folder of certificates; `remove()` deletes it. */
export type Certs = {
  dir: string;
  /** The cluster CA's certificate. */
  ca: string;
  /** A second, unrelated CA. */
  otherCa: string;
  /** `{ ca, cert, key }` for `name`, as made by `issue`. */
  files(name: string): TlsFiles;
  /**
   * Make a key and certificate `name` (file stem) naming `dnsNames`, signed by the cluster CA (or
   * the other one), valid for `days` (negative: already expired).
   */
  issue(name: string, dnsNames: string[], options?: { otherCa?: boolean; days?: number }): TlsFiles;
  remove(): void;
};

let serial = Date.now() % 1_000_000_000;

/** Make a CA, a second CA, and certificates for `members` (each naming itself). */
export function makeCerts(members: readonly string[]): Certs {
  const dir = mkdtempSync(join(tmpdir(), 'edgeraft-certs-'));
  const path = (f: string) => join(dir, f);
  for (const ca of ['ca', 'other-ca']) {
    run([
      'req',
      '-x509',
      ...keyArgs,
      '-keyout',
      path(`${ca}.key`),
      '-out',
      path(`${ca}.crt`),
      '-days',
      '2',
      '-subj',
      `/CN=edgeraft test ${ca}`,
    ]);
  }
  const issue: Certs['issue'] = (name, dnsNames, options = {}) => {
    const ca = options.otherCa === true ? 'other-ca' : 'ca';
    run(['req', ...keyArgs, '-keyout', path(`${name}.key`), '-out', path(`${name}.csr`)].concat([
      '-subj',
      `/CN=${dnsNames[0] ?? name}`,
    ]));
    writeFileSync(
      path(`${name}.ext`),
      dnsNames.length === 0
        ? 'basicConstraints=CA:FALSE\n'
        : `subjectAltName=${dnsNames.map((n) => `DNS:${n}`).join(',')}\n`,
    );
    run([
      'x509',
      '-req',
      '-in',
      path(`${name}.csr`),
      '-CA',
      path(`${ca}.crt`),
      '-CAkey',
      path(`${ca}.key`),
      '-set_serial',
      String(serial++),
      '-days',
      // `-days -1` makes notAfter a day before notBefore (now): expired.
      String(options.days ?? 2),
      '-extfile',
      path(`${name}.ext`),
      '-out',
      path(`${name}.crt`),
    ]);
    return { ca: path('ca.crt'), cert: path(`${name}.crt`), key: path(`${name}.key`) };
  };
  for (const m of members) issue(m, [m]);
  return {
    dir,
    ca: path('ca.crt'),
    otherCa: path('other-ca.crt'),
    files: (name) => ({ ca: path('ca.crt'), cert: path(`${name}.crt`), key: path(`${name}.key`) }),
    issue,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

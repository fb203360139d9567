/**
 * Listening on a port that a moment ago belonged to a process that died: right after a SIGKILL the
 * port may still be held for a moment (a socket of the old process not yet released, an outgoing
 * connection that happened to take it), so a restarted member tries again for a bounded time
 * before it gives up with the original error.
 *
 * @example
 * ```ts
 * await listenRetrying(net.createServer(), 7001, '127.0.0.1', (m) => console.warn(m));
 * ```
 * @module
 */
import type * as net from 'node:net';

/** How long a listen on a port in use is tried again, in milliseconds. */
export const listenRetryMsMax = 3_000;
/** Milliseconds between attempts. */
export const listenRetryDelayMs = 100;

/** Listen on `host:port`; EADDRINUSE on a fixed port is tried again for `listenRetryMsMax`. */
export async function listenRetrying(
  server: net.Server,
  port: number,
  host: string,
  warn: (message: string) => void,
): Promise<void> {
  const startedMs = Date.now();
  let warned = false;
  for (;;) {
    try {
      await new Promise<void>((resolve, reject) => {
        const onListening = () => {
          server.off('error', onError);
          resolve();
        };
        const onError = (error: Error) => {
          server.off('listening', onListening); // else each failed attempt leaves one behind
          reject(error);
        };
        server.once('error', onError);
        server.once('listening', onListening);
        server.listen(port, host);
      });
      return;
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code !== 'EADDRINUSE' || port === 0 || Date.now() - startedMs >= listenRetryMsMax) {
        throw error;
      }
      if (!warned) {
        warned = true;
        warn(`${host}:${port} is in use; trying again for up to ${listenRetryMsMax} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, listenRetryDelayMs));
    }
  }
}

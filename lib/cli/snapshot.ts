/**
 * Disaster recovery, as etcdctl has it: `snapshot save FILE` fetches a member's snapshot (the
 * leader's by default) over the client port into a checksummed file (`lib/storage/snapshot-file.ts`),
 * and `snapshot restore FILE --data DIR --id ID --members ...` makes, offline, a fresh data
 * directory that starts a new cluster from it (`lib/storage/restore.ts`).
 *
 * `save` asks the member to take a snapshot first (covering everything it applied; `--take=false`
 * uses its latest stored one), then reads it in ranges of at most `snapshotReadBytesMax`, each
 * naming the snapshot's index and term: if the member replaces its snapshot meanwhile, the save
 * starts again from the new one, at most `saveAttemptsMax` times. The file is written as
 * `FILE.part` and renamed once complete, so FILE is never a half file.
 *
 * @example
 * ```sh
 * edgeraft snapshot save backup.snap --servers 127.0.0.1:8001
 * edgeraft snapshot restore backup.snap --data /var/lib/edgeraft/a --id a --members a=...,b=...
 * ```
 * @module
 */
import * as v from 'valibot';
import { DialAddressSchema } from '../base/address.ts';
import { type SnapshotInfoOutput, snapshotReadBytesMax } from '../base/client-protocol.ts';
import { configurationMembersMax, MemberIdSchema } from '../base/messages.ts';
import { ClientError, RaftClient } from '../client/client.ts';
import { restoreDataDir, RestoreTargetError } from '../storage/restore.ts';
import {
  type SnapshotFileHeader,
  SnapshotFileWriter,
  verifySnapshotFile,
} from '../storage/snapshot-file.ts';
import { parseMembers, UsageError } from './args.ts';
import { clientFlags, clientOptions, type Command, serverList } from './command.ts';

/** Times `save` starts again after the member replaced its snapshot during the save, at most. */
export const saveAttemptsMax = 3;
/** `save` prints a progress line at most this often, in milliseconds. */
export const progressIntervalMs = 1_000;
/** Snapshots smaller than this, in bytes, get no progress lines (only the summary): 8 MiB. */
export const progressBytesMin = 8 * 1024 * 1024;

/** What `save` reads of a member's status (`RaftServer.status()`), checked like any answer. */
const StatusForSaveSchema = v.object({
  id: MemberIdSchema,
  leaderId: v.nullable(MemberIdSchema),
  clientAddress: DialAddressSchema,
  members: v.pipe(
    v.array(v.object({ id: MemberIdSchema, clientAddress: v.optional(DialAddressSchema) })),
    v.maxLength(configurationMembersMax),
  ),
});
type StatusForSave = v.InferOutput<typeof StatusForSaveSchema>;

/** While no leader is known, `save` asks again this often, in milliseconds (up to `--timeout`). */
export const leaderPollMs = 100;

/** The client address of the member to save from: `--member`, else the leader (waited for). */
async function targetOf(
  flags: Record<string, unknown>,
): Promise<{ id: string; address: string }> {
  const wanted = flags['member'] === undefined ? null : String(flags['member']);
  const options = clientOptions(flags);
  const deadlineMs = Date.now() + options.requestTimeoutMs;
  const client = await RaftClient.connect({ ...options, session: false, preferLeader: false });
  let status: StatusForSave;
  try {
    for (;;) {
      const answer = v.safeParse(StatusForSaveSchema, await client.status());
      if (!answer.success) {
        throw new Error(`Malformed status answer: ${answer.issues[0].message}`);
      }
      status = answer.output;
      if (wanted !== null || status.leaderId !== null || Date.now() >= deadlineMs) break;
      await new Promise((resolve) => setTimeout(resolve, leaderPollMs));
    }
  } finally {
    await client.close();
  }
  const id = wanted ?? status.leaderId;
  if (id === null) {
    throw new Error(
      `No leader known to member ${status.id} within ${options.requestTimeoutMs} ms: name a member with --member`,
    );
  }
  if (id === status.id) return { id, address: status.clientAddress };
  const address = status.members.find((m) => m.id === id)?.clientAddress;
  if (address === undefined) {
    throw new UsageError(
      `Flag --member: ${id} is not a member with a client address in ${status.id}'s configuration`,
    );
  }
  return { id, address };
}

function mib(bytes: number): string {
  return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

/** One attempt: the member's current snapshot into the file. Null when the snapshot changed. */
async function saveOnce(
  client: RaftClient,
  path: string,
  member: string,
  info: NonNullable<SnapshotInfoOutput>,
  chunkBytes: number,
): Promise<{ header: SnapshotFileHeader; sha256: string; fileBytes: number } | null> {
  const { meta, totalBytes } = info;
  const header: SnapshotFileHeader = {
    index: meta.index,
    term: meta.term,
    timeMs: meta.timeMs,
    members: meta.members,
    dataBytes: totalBytes,
    savedAtMs: Date.now(),
    savedFrom: member,
  };
  const writer = SnapshotFileWriter.create(path, header);
  const startedMs = Date.now();
  let reportedMs = startedMs;
  try {
    let offsetBytes = 0;
    for (;;) {
      let part;
      try {
        part = await client.snapshotRead(meta.index, meta.term, offsetBytes, chunkBytes);
      } catch (error) {
        if (error instanceof ClientError && error.code === 'SNAPSHOT_CHANGED') {
          writer.abort();
          return null;
        }
        throw error;
      }
      if (part.totalBytes !== totalBytes) {
        throw new Error(
          `Snapshot size changed during the save: ${totalBytes} → ${part.totalBytes} bytes`,
        );
      }
      writer.append(part.data);
      offsetBytes += part.data.byteLength;
      if (part.done) break;
      if (part.data.byteLength === 0) {
        throw new Error(`Snapshot read made no progress at ${offsetBytes} bytes`);
      }
      const nowMs = Date.now();
      if (totalBytes >= progressBytesMin && nowMs - reportedMs >= progressIntervalMs) {
        reportedMs = nowMs;
        const rate = offsetBytes / Math.max(1, nowMs - startedMs) * 1000;
        console.error(
          `saved ${mib(offsetBytes)} of ${mib(totalBytes)} (${
            (100 * offsetBytes / totalBytes).toFixed(0)
          }%, ${mib(rate)}/s)`,
        );
      }
    }
    return { header, ...writer.finish() };
  } catch (error) {
    writer.abort();
    throw error;
  }
}

/** `snapshot save FILE`. */
async function save(flags: Record<string, unknown>, pos: string[]): Promise<number> {
  if (pos.length !== 1) throw new UsageError('snapshot save takes FILE');
  const path = pos[0]!;
  serverList(flags);
  const target = await targetOf(flags);
  const client = await RaftClient.connect({
    ...clientOptions(flags, [target.address]),
    session: false,
    preferLeader: false,
  });
  try {
    const startedMs = Date.now();
    let take = flags['take'] !== false;
    for (let attempt = 1; attempt <= saveAttemptsMax; attempt++) {
      const info = await client.snapshotInfo(take);
      if (info === null) {
        throw new Error(
          `Member ${target.id} holds no snapshot yet: leave out --take=false to have it take one`,
        );
      }
      const saved = await saveOnce(client, path, target.id, info, Number(flags['chunk-bytes']));
      if (saved === null) {
        console.error(
          `the snapshot of ${target.id} at index ${info.meta.index} was replaced during the save; starting again`,
        );
        take = false; // the newer one is as recent
        continue;
      }
      const elapsedMs = Date.now() - startedMs;
      console.log(JSON.stringify({
        saved: path,
        member: target.id,
        index: saved.header.index,
        term: saved.header.term,
        dataBytes: saved.header.dataBytes,
        fileBytes: saved.fileBytes,
        sha256: saved.sha256,
        members: saved.header.members.map((m) => m.id),
        elapsedMs,
      }));
      return 0;
    }
    throw new Error(
      `The snapshot of ${target.id} was replaced during each of ${saveAttemptsMax} attempts: try again`,
    );
  } finally {
    await client.close();
  }
}

/** `snapshot restore FILE --data DIR --id ID --members ...`. */
async function restore(flags: Record<string, unknown>, pos: string[]): Promise<number> {
  if (pos.length !== 1) throw new UsageError('snapshot restore takes FILE');
  for (const f of ['data', 'id', 'members']) {
    if (flags[f] === undefined) throw new UsageError(`snapshot restore needs --${f}`);
  }
  const id = String(flags['id']);
  const specs = parseMembers(String(flags['members']), 'members');
  if (!specs.some((m) => m.id === id)) throw new UsageError(`Flag --id: ${id} is not in --members`);
  const file = verifySnapshotFile(pos[0]!);
  const dataDir = String(flags['data']);
  let meta;
  try {
    meta = await restoreDataDir({
      file,
      dataDir,
      members: specs.map((m) => ({
        id: m.id,
        type: 'ACTIVE' as const,
        address: m.address,
        clientAddress: m.clientAddress,
      })),
    });
  } catch (error) {
    if (error instanceof RestoreTargetError) throw new UsageError(`Flag --data: ${error.message}`);
    throw error;
  }
  console.log(JSON.stringify({
    restored: dataDir,
    id,
    index: meta.index,
    term: meta.term,
    dataBytes: file.header.dataBytes,
    sha256: file.sha256,
    members: meta.members.map((m) => m.id),
    savedFrom: file.header.savedFrom,
  }));
  console.error(
    `start it with: serve --id ${id} --data ${dataDir} --members ${String(flags['members'])}`,
  );
  return 0;
}

/** The `snapshot` command and its subcommands. */
export const snapshotCommand: Command = {
  summary: "save a member's snapshot to a file, or restore a new data directory from one",
  usage: 'snapshot save|restore ...',
  flags: {},
  run: () => Promise.resolve(2),
  subcommands: {
    save: {
      summary:
        'fetch the snapshot of the leader (or --member) into FILE (checksummed; written as FILE.part, then renamed)',
      usage:
        'snapshot save FILE [--member ID] [--take=false] [--chunk-bytes N] [--servers ...] [--timeout MS]',
      flags: clientFlags({
        member: { kind: 'string', help: 'save from this member instead of the leader' },
        'chunk-bytes': {
          kind: 'int',
          help: 'bytes asked for per read of the snapshot',
          default: snapshotReadBytesMax,
          min: 1,
          max: snapshotReadBytesMax,
        },
        take: {
          kind: 'bool',
          help:
            'have the member take a snapshot first, covering everything it applied (--take=false: its latest stored one)',
          default: true,
        },
      }),
      run: save,
    },
    restore: {
      summary:
        'offline: verify FILE and make a fresh data directory DIR that starts a new cluster of --members from it',
      usage: 'snapshot restore FILE --data DIR --id ID --members ID=PEER/CLIENT,...',
      flags: {
        data: { kind: 'string', help: 'the new data directory (absent or empty)' },
        id: { kind: 'string', help: 'the member this directory is for (must appear in --members)' },
        members: {
          kind: 'string',
          help:
            'the new cluster, every member ACTIVE: id=peerHost:port/clientHost:port,... (the same for every member)',
        },
      },
      run: restore,
    },
  },
};

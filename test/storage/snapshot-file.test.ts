// Proves the snapshot file and the restore of a data directory from it: a written file verifies
// and reads back its header and bytes, and exists under its name only once finished (before, only
// as FILE.part; an aborted one leaves nothing); a file of another version is refused naming both
// versions; a restored directory holds what an installed snapshot leaves (the snapshot data and
// metadata at its index and term, the log compacted to it and empty after it, the given members as
// the configuration, the hard state at the snapshot's term with its index committed); restore
// refuses a directory that holds anything.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LmdbStorage } from '../../lib/storage/lmdb.ts';
import { restoreDataDir, RestoreTargetError } from '../../lib/storage/restore.ts';
import {
  readSnapshotFileData,
  type SnapshotFileHeader,
  SnapshotFileWriter,
  verifySnapshotFile,
} from '../../lib/storage/snapshot-file.ts';

const test = suite('snapshot file and restore');

let root = '';
test.before(() => {
  root = mkdtempSync(join(tmpdir(), 'edgeraft-snapshot-file-'));
});
test.after(() => rmSync(root, { recursive: true, force: true }));

const oldMembers = [
  { id: 'x', type: 'ACTIVE' as const, address: '10.0.0.1:1', clientAddress: '10.0.0.1:2' },
];
const data = Uint8Array.from({ length: 2_500_000 }, (_, i) => (i * 13) % 256);
const header: SnapshotFileHeader = {
  index: 42,
  term: 3,
  timeMs: 1_000,
  members: oldMembers,
  dataBytes: data.byteLength,
  savedAtMs: 5,
  savedFrom: 'x',
};

/** Write `data` under `name` in two appends; returns the path. */
function writeFile(name: string): string {
  const path = join(root, name);
  const writer = SnapshotFileWriter.create(path, header);
  writer.append(data.subarray(0, 1_000_000));
  assert.not.ok(existsSync(path), 'not under its name before finish');
  assert.ok(existsSync(`${path}.part`), 'written as FILE.part');
  writer.append(data.subarray(1_000_000));
  writer.finish();
  assert.not.ok(existsSync(`${path}.part`), 'the .part file is renamed');
  return path;
}

test('a written file verifies and reads back; an aborted one leaves nothing', () => {
  const path = writeFile('ok.snap');
  const verified = verifySnapshotFile(path);
  assert.equal(verified.header, header);
  assert.equal(Buffer.concat([...readSnapshotFileData(verified)]), Buffer.from(data));
  const aborted = join(root, 'aborted.snap');
  const writer = SnapshotFileWriter.create(aborted, header);
  writer.append(data.subarray(0, 10));
  writer.abort();
  assert.not.ok(existsSync(aborted) || existsSync(`${aborted}.part`), 'nothing left');
});

test('a file of another version is refused, naming the versions', () => {
  const bytes = readFileSync(writeFile('v.snap'));
  bytes[9] = 2; // the low byte of the version
  const other = join(root, 'v2.snap');
  writeFileSync(other, bytes);
  assert.throws(
    () => verifySnapshotFile(other),
    /Unsupported snapshot file version 2: this edgeraft reads version 1/,
  );
});

test('a restored directory holds what an installed snapshot leaves', async () => {
  const file = verifySnapshotFile(writeFile('restore.snap'));
  const members = ['a', 'b', 'c'].map((id, i) => ({
    id,
    type: 'ACTIVE' as const,
    address: `127.0.0.1:${7001 + i}`,
    clientAddress: `127.0.0.1:${8001 + i}`,
  }));
  const dataDir = join(root, 'restored');
  await restoreDataDir({ file, dataDir, members });
  const storage = await LmdbStorage.open({ path: dataDir });
  try {
    assert.equal(storage.snapshotMeta(), { index: 42, term: 3, timeMs: 1_000, members });
    assert.equal(storage.configurations(), [{ index: 42, term: 3, members }]);
    assert.is(storage.firstIndex(), 43, 'compacted to the snapshot');
    assert.is(storage.lastIndex(), 42, 'no entry after it');
    assert.is(storage.term(42), 3);
    assert.equal(storage.hardState(), { term: 3, vote: null, commitIndex: 42 });
    const info = storage.snapshots.info();
    assert.is(info?.index, 42);
    assert.is(info?.bytes, data.byteLength);
    const stored: Uint8Array[] = [];
    for await (const chunk of storage.snapshots.read()) stored.push(chunk);
    assert.equal(Buffer.concat(stored), Buffer.from(data), 'the snapshot data');
  } finally {
    await storage.close();
  }
  const busy = join(root, 'busy');
  mkdirSync(busy);
  writeFileSync(join(busy, 'x'), 'x');
  try {
    await restoreDataDir({ file, dataDir: busy, members });
    assert.unreachable('restored into a directory that holds data');
  } catch (error) {
    assert.instance(error, RestoreTargetError);
    assert.match((error as Error).message, /already holds data/);
  }
});

test.run();

/**
 * PGlite is one process's database: a second process opening the same folder neither sees the first one's writes
 * nor keeps its own safely. A server on PGlite therefore marks its data folder (`<dataDir>/server.json`: pid and
 * URL) while it runs; another server, or `dialect keys`, refuses to open the folder while that process lives. A
 * mark left by a process that died is ignored.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface DataDirHolder {
  pid: number;
  url: string;
}

const markOf = (dataDir: string) => join(dataDir, 'server.json');

/** The live process that holds the folder, or null. */
export function dataDirHolder(dataDir: string): DataDirHolder | null {
  let holder: DataDirHolder;
  try {
    holder = JSON.parse(readFileSync(markOf(dataDir), 'utf8')) as DataDirHolder;
  } catch {
    return null;
  }
  if (!Number.isInteger(holder.pid) || holder.pid === process.pid) return null;
  try {
    process.kill(holder.pid, 0);
    return holder;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else; it still holds the folder.
    return (error as { code?: unknown }).code === 'EPERM' ? holder : null;
  }
}

export function markDataDir(dataDir: string, url: string): void {
  writeFileSync(markOf(dataDir), `${JSON.stringify({ pid: process.pid, url })}\n`);
}

export function unmarkDataDir(dataDir: string): void {
  const holder = (() => {
    try {
      return JSON.parse(readFileSync(markOf(dataDir), 'utf8')) as DataDirHolder;
    } catch {
      return null;
    }
  })();
  if (holder?.pid === process.pid) rmSync(markOf(dataDir), { force: true });
}

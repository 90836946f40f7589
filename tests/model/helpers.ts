import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const TINY_BUNDLE = fileURLToPath(new URL('../fixtures/tiny-bundle/', import.meta.url));
export const GOLDEN_DIR = fileURLToPath(new URL('../fixtures/golden/', import.meta.url));

export async function readJson<T = any>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

export async function tinyManifest(): Promise<any> {
  return readJson(join(TINY_BUNDLE, 'manifest.json'));
}

/** A copy of the tiny bundle in a temporary folder, with its manifest changed by `edit`. */
export async function bundleCopy(edit: (manifest: any) => void = () => {}): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'dialect-bundle-'));
  await cp(TINY_BUNDLE, dir, { recursive: true });
  const manifest = await tinyManifest();
  edit(manifest);
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

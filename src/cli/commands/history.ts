/** `dialect migrate`, `dialect export` and `dialect import`: operator commands over the database. */
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import {
  exportHistory,
  importHistory,
  openDatabase,
  ownerOfConversation,
  type Database,
  type RenderPng,
} from '../../db/index.ts';
import type { TarModel } from '../../model/index.ts';
import { loadModelFromFlags } from '../model-options.ts';
import { UsageError } from '../usage-error.ts';

async function withDatabase<T>(body: (database: Database) => Promise<T>): Promise<T> {
  const database = await openDatabase();
  try {
    return await body(database);
  } finally {
    await database.close();
  }
}

/** `dialect migrate`: applies pending migrations (openDatabase does) and says where. */
export async function runMigrate(argv: readonly string[]): Promise<number> {
  if (argv.length > 0) throw new UsageError('migrate takes no arguments (DATABASE_URL or DIALECT_DATA_DIR choose the database)');
  await withDatabase(async (database) => {
    process.stderr.write(`dialect: migrations applied (${database.driver}, ${database.location})\n`);
  });
  return 0;
}

/**
 * `dialect export --conversation ID | --user ID [--out FILE] [--tokens-only] [--model DIR]`: writes the JSON
 * export. Images whose PNG cache is empty are rendered from their tokens with the model, unless --tokens-only.
 */
export async function runExport(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      conversation: { type: 'string' },
      user: { type: 'string' },
      out: { type: 'string' },
      'tokens-only': { type: 'boolean' },
      model: { type: 'string' },
      provider: { type: 'string' },
      threads: { type: 'string' },
    },
  });
  if (positionals.length > 0) throw new UsageError(`export takes flags only, not "${String(positionals[0])}"`);
  if ((values.conversation === undefined) === (values.user === undefined)) {
    throw new UsageError('export needs exactly one of --conversation ID and --user ID');
  }
  let model: TarModel | undefined;
  const renderPng: RenderPng = async ({ tokens, scale, seed }) => {
    model ??= await loadModelFromFlags(values);
    return (await model.renderImage({ tokens, scale, ...(seed === undefined ? {} : { seed }) })).png;
  };
  try {
    const document = await withDatabase(async (database) => {
      const userId = values.user ?? (await ownerOfConversation(database, values.conversation!));
      return exportHistory(database, userId, {
        ...(values.conversation === undefined ? {} : { conversationId: values.conversation }),
        ...(values['tokens-only'] ? {} : { renderPng }),
      });
    });
    const json = `${JSON.stringify(document, null, 1)}\n`;
    if (values.out === undefined) process.stdout.write(json);
    else await writeFile(values.out, json);
    const missing = document.images.filter((image) => image.png === null).length;
    process.stderr.write(
      `dialect: exported ${document.conversations.length} conversation(s), ` +
        `${document.conversations.reduce((sum, c) => sum + c.turns.length, 0)} turn(s), ${document.images.length} image(s)` +
        `${missing > 0 ? ` (${missing} without PNG)` : ''}\n`,
    );
  } finally {
    await model?.dispose();
  }
  return 0;
}

/** `dialect import FILE [--user ID] [--new-ids]`: restores an export; prints a JSON summary. */
export async function runImport(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: { user: { type: 'string' }, 'new-ids': { type: 'boolean' } },
  });
  if (positionals.length !== 1) throw new UsageError('import takes one export file');
  let document: unknown;
  try {
    document = JSON.parse(await readFile(positionals[0]!, 'utf8'));
  } catch (error) {
    throw new UsageError(`cannot read ${positionals[0]}: ${(error as Error).message}`);
  }
  const summary = await withDatabase((database) =>
    importHistory(database, document, {
      ...(values.user === undefined ? {} : { userId: values.user }),
      newIds: values['new-ids'] ?? false,
    }),
  );
  const { idMap: _idMap, ...short } = summary;
  process.stdout.write(`${JSON.stringify(short)}\n`);
  return 0;
}

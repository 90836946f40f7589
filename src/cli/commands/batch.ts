import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { loadModelFromFlags, modelFlags, parseOptionalInteger } from '../model-options.ts';
import { ProgressLine } from '../progress.ts';
import { type CliRequest, type CliResult, parseRequest, runRequest } from '../requests.ts';
import { UsageError } from '../usage-error.ts';

interface BatchLine {
  id: unknown;
  request?: CliRequest;
  error?: { code: string; message: string };
}

/**
 * `dialect batch FILE.jsonl`: loads the model once and keeps up to `--concurrency` requests in flight, so that the
 * runtime batches their decode steps. Answers go to stdout one JSON line each, in the order of the input, so the
 * output lines up with the file; a bad line gets an error answer and the rest still run.
 */
export async function runBatch(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: { ...modelFlags, concurrency: { type: 'string' } },
  });
  if (positionals.length !== 1) throw new UsageError('batch takes exactly one REQUESTS.jsonl file');
  const file = resolve(positionals[0] as string);
  const concurrency = parseOptionalInteger('--concurrency', values.concurrency, 1, 256) ?? 16;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  const lines = parseLines(text);
  const baseDir = dirname(file);
  const model = await loadModelFromFlags(values, concurrency);
  const progress = new ProgressLine();
  const answers: (string | undefined)[] = new Array(lines.length);
  let printed = 0;
  let done = 0;
  let failed = 0;
  const flush = () => {
    while (printed < answers.length && answers[printed] !== undefined) {
      process.stdout.write(`${answers[printed]}\n`);
      printed += 1;
    }
  };

  let next = 0;
  const worker = async () => {
    while (next < lines.length) {
      const index = next++;
      const line = lines[index] as BatchLine;
      let answer: Record<string, unknown>;
      if (line.request === undefined) {
        answer = { id: line.id, error: line.error };
      } else {
        try {
          const started = performance.now();
          const result: CliResult = await runRequest(model, line.request, baseDir);
          // Wall time of the request as the batch saw it (queueing behind batch-mates included), in milliseconds.
          answer = { id: line.id, ...result, ms: Math.round((performance.now() - started) * 10) / 10 };
        } catch (error) {
          answer = { id: line.id, error: describeError(error) };
        }
      }
      if ('error' in answer) failed += 1;
      answers[index] = JSON.stringify(answer);
      done += 1;
      progress.count('requests', done, lines.length);
      flush();
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, lines.length) }, worker));
  } finally {
    progress.clear();
    await model.dispose();
  }
  process.stderr.write(`${lines.length - failed} answered, ${failed} failed\n`);
  return failed === 0 ? 0 : 1;
}

function parseLines(text: string): BatchLine[] {
  return text
    .split('\n')
    .map((raw, index) => ({ raw: raw.trim(), number: index + 1 }))
    .filter(({ raw }) => raw.length > 0)
    .map(({ raw, number }): BatchLine => {
      let value: unknown;
      try {
        value = JSON.parse(raw);
      } catch {
        return { id: null, error: { code: 'BAD_REQUEST', message: `line ${number} is not valid JSON` } };
      }
      const id = (value as { id?: unknown } | null)?.id ?? null;
      try {
        return { id, request: parseRequest(value) };
      } catch (error) {
        return { id, error: { code: 'BAD_REQUEST', message: `line ${number}: ${(error as Error).message}` } };
      }
    });
}

function describeError(error: unknown): { code: string; message: string } {
  if (error instanceof UsageError) return { code: 'BAD_REQUEST', message: error.message };
  const code = (error as { code?: unknown }).code;
  return {
    code: typeof code === 'string' ? code : 'INTERNAL',
    message: error instanceof Error ? error.message : String(error),
  };
}

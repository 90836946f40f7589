import { runBatch } from './commands/batch.ts';
import { runExport, runImport, runMigrate } from './commands/history.ts';
import { KEYS_HELP, runKeys } from './commands/keys.ts';
import { runSingle } from './commands/single.ts';
import { UsageError } from './usage-error.ts';

const HELP = `dialect: run the Tar model from the command line

  dialect understand --image IN.png "QUESTION" [--scale 1|2|3] [--views S,…|none]
                                                            print the answer
  dialect generate "PROMPT" --out OUT.png [--seed N] [--scale 1|2|3] [--guidance G] [--self-check]
  dialect edit --image IN.png "INSTRUCTION" --out OUT.png [--seed N] [--scale 1|2|3] [--guidance G] [--self-check]
  dialect reconstruct --image IN.png --out OUT.png [--seed N] [--scale 1|2|3]
                                                            encode to image tokens and render them back
  dialect batch REQUESTS.jsonl                              one JSON answer a line on stdout

History (PostgreSQL at $DATABASE_URL, else PGlite in $DIALECT_DATA_DIR, default ./data):
  dialect migrate                                           apply pending database migrations
  dialect export --conversation ID | --user ID [--out FILE] [--tokens-only]
                                                            JSON with turns and images (tokens + PNG)
  dialect import FILE [--user ID] [--new-ids]               restore an export (same ids: idempotent)

API keys of the server (same database):
${KEYS_HELP}

Model flags (every command):
  --model DIR        a model bundle (default: models/tar-shapes, or $DIALECT_MODEL)
  --provider NAME    cpu (default), cuda or webgpu (or $DIALECT_PROVIDER)
  --threads N        onnxruntime intra-op threads

Request flags (understand, generate, edit, reconstruct; a batch line sets them as fields):
  --seed N           the seed of the request's draws
  --scale 1|2|3      the image tokens' scale (default: the model's: the scale it writes images at for generate
                     and edit, the one it reads images at for understand and reconstruct)
  --temperature T    sampling of the model's answer (0: greedy; default: the model's); not reconstruct
  --views S,…|none   understand: also read the image encoded at these scales, one more view each (default: the
                     model's; none: the image at --scale alone)
  --guidance G       generate and edit: how strongly the image follows the text (classifier-free guidance; 1: off;
                     default: the model's)
  --detok-guidance G generate, edit and reconstruct: how strongly the de-tokenizer's pixels follow the image tokens
                     (classifier-free guidance of the AR-DTok; 1: off; default: the model's)
  --self-check       generate and edit: the model reads the image it wrote and, when that reading misses the
                     request, writes more and keeps the first that meets it (slower when the first misses)

A batch line is {"id","task":"understand","image","prompt","scale"?,"views"?}, {"id","task":"generate","prompt","out","seed"?,
"scale"?,"guidance"?}, {"id","task":"edit","image","prompt","out","seed"?,"scale"?,"guidance"?} or {"id","task":
"reconstruct","image","out","seed"?,"scale"?}, with "temperature"? on all but reconstruct and "detokGuidance"? on all
but understand, "selfCheck"? on generate and edit, "imageScale"? on edit; paths are relative to the file. An answer is {"id","text"?,"image"?,"tokens"?,"seed","ms"} or {"id","error"}.
`;

/** Runs the CLI; returns the exit code (0 ok, 1 failed, 2 usage). */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'understand':
      case 'generate':
      case 'edit':
      case 'reconstruct':
        return await runSingle(command, rest);
      case 'keys':
        return await runKeys(rest);
      case 'batch':
        return await runBatch(rest);
      case 'migrate':
        return await runMigrate(rest);
      case 'export':
        return await runExport(rest);
      case 'import':
        return await runImport(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(HELP);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}"\n\n${HELP}`);
    }
  } catch (error) {
    return reportFailure(error);
  }
}

export function reportFailure(error: unknown): number {
  const code = (error as { code?: unknown }).code;
  // node:util parseArgs refuses unknown or malformed flags with ERR_PARSE_ARGS_* errors: mistakes of usage too.
  if (error instanceof UsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_'))) {
    process.stderr.write(`dialect: ${(error as Error).message}\n`);
    return 2;
  }
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`dialect: ${typeof code === 'string' ? `${code}: ` : ''}${message}\n`);
  return 1;
}


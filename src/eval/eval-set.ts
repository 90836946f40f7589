// The held-out eval set (eval/shapes/, written by `training/py -m shapes.dataset eval`) and the evaluation items
// drawn from it. Everything here is plain JSON and PNG paths: no Python needed.
//
// One record gives several items:
//   understand record  → a question (its own), read as the model reads images, and (scale probe) at scales 1, 2, 3;
//   generate record    → a generation from its prompt, graded against its constraints;
//   edit record        → an edit of its source image, graded against its target scene;
//   multiturn record   → every turn as a single-turn item on the image it refers to (teacher forcing: the
//                        reference images stand in for earlier answers), so each turn is graded on its own;
// and every record's first image is described ("Describe the image.") and round-tripped (encoded as the model encodes
// an image it is given, at its reading scale, and rendered back), understand records' images also at scales 1, 2, 3.
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type Constraints, type EditOp, type QuestionKind, type Scene, describe, parseScene, QUESTION_KINDS,
} from '../shapes/index.ts';

/** The committed eval set. */
export const DEFAULT_EVAL_DIR = fileURLToPath(new URL('../../eval/shapes/', import.meta.url));

export const DESCRIBE_QUESTION = 'Describe the image.';

/**
 * The scale probe of understanding: each understand record's question again at every scale, read from that scale
 * alone (no other views), beside the main items' reading at the model's understanding scale and views.
 */
export const QUESTION_PROBE_SCALES = [1, 2, 3] as const;
/**
 * The scale probe of the round trip: the understand records' images encoded at every scale and rendered back, beside
 * the main items' round trip at the model's reading scale (which the probe repeats, the same tokens and renderings).
 */
export const ROUND_TRIP_PROBE_SCALES = [1, 2, 3] as const;

interface RawTurn {
  role: 'user' | 'assistant';
  task?: 'understand' | 'generate' | 'edit';
  text?: string;
  canonical_text?: string;
  image?: number;
  kind?: QuestionKind;
  op?: EditOp;
  constraints?: Constraints;
}

/** A record of eval.jsonl as the Python writer writes it (fields the evaluation reads). */
export type EvalRecord =
  | { type: 'understand'; seed: number; scene: unknown; kind: QuestionKind; canonical_question: string; answer: string; images: string[] }
  | { type: 'generate'; seed: number; canonical_prompt: string; full: boolean; constraints: Constraints; scene: unknown; images: string[] }
  | { type: 'edit'; seed: number; scene: unknown; op: EditOp; canonical_instruction: string; target: unknown; images: string[] }
  | { type: 'multiturn'; seed: number; scenes: unknown[]; turns: RawTurn[]; images: string[] };

export interface EvalSet {
  /** Absolute path of the set's folder; item image paths are absolute. */
  dir: string;
  records: EvalRecord[];
  manifest: { format: string; seedStart: number; count: number };
}

export async function loadEvalSet(dir: string = DEFAULT_EVAL_DIR): Promise<EvalSet> {
  const abs = resolve(dir);
  const read = async (name: string) => {
    try {
      return await readFile(join(abs, name), 'utf8');
    } catch (error) {
      throw new Error(`eval set ${abs}: cannot read ${name} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
    }
  };
  const manifest = JSON.parse(await read('manifest.json')) as EvalSet['manifest'];
  if (manifest.format !== 'shapes-eval/1') throw new Error(`eval set ${abs}: format ${manifest.format}, expected shapes-eval/1`);
  const records = (await read('eval.jsonl'))
    .split('\n')
    .filter((line) => line.trim().length > 0)
    .map((line) => JSON.parse(line) as EvalRecord);
  return { dir: abs, records, manifest };
}

/** Which headline figure an item counts towards. */
export type ItemSet =
  | 'questions' // understanding: the set's questions, read at the model's reading scale and views
  | 'describe' // understanding: "Describe the image." on every record's first image, read as the questions are
  | 'question-scales' // understanding: the understand records' questions again at scales 1, 2 and 3, one view each
  | 'generate' // generation, default scale
  | 'edit' // editing, default scale
  | 'round-trip' // encode + render back, at the scale the model reads images at
  | 'round-trip-scales'; // the same at scales 1, 2 and 3, on the understand records' images

interface ItemBase {
  /** Unique in a run; also the batch line id and the output file name. */
  id: string;
  set: ItemSet;
  /** Seed of the record the item comes from. */
  record: number;
  /** Where the item comes from: a single-task record or a turn of a conversation. */
  origin: 'record' | 'conversation';
  /** The request's seed (fixed: the record's seed), so that a run is reproducible. */
  seed: number;
  /** Explicit scale of the request; undefined = the model's own for the task (reading or writing scale). */
  scale?: number;
}

/** `reference`: the eval set's rendering of a right answer (the generate record's target scene, the edit's target);
 * not shown to the model, only for looking at failures and for the oracle test. */
export type EvalItem =
  | (ItemBase & { task: 'understand'; image: string; scene: Scene; kind: QuestionKind; question: string; answer: string })
  | (ItemBase & { task: 'generate'; prompt: string; constraints: Constraints; full: boolean; reference: string })
  | (ItemBase & { task: 'edit'; image: string; op: EditOp; instruction: string; source: Scene; target: Scene; reference: string })
  | (ItemBase & { task: 'reconstruct'; image: string; scene: Scene });

function at<T>(list: readonly T[], index: number, what: string): T {
  const value = list[index];
  if (value === undefined) throw new Error(`eval set: ${what} has no entry ${index}`);
  return value;
}

/** Every item of the records, in record order (records' own items first, then describe and round trip). */
export function buildItems(set: EvalSet, options: { limit?: number } = {}): EvalItem[] {
  const records = options.limit === undefined ? set.records : set.records.slice(0, options.limit);
  const items: EvalItem[] = [];
  const image = (record: EvalRecord, index: number) => join(set.dir, at(record.images, index, `record ${record.seed} images`));
  for (const record of records) {
    const base = { record: record.seed, seed: record.seed } as const;
    switch (record.type) {
      case 'understand': {
        const scene = parseScene(record.scene);
        if (!QUESTION_KINDS.includes(record.kind)) throw new Error(`record ${record.seed}: unknown kind ${record.kind}`);
        const question = { task: 'understand', image: image(record, 0), scene, kind: record.kind,
          question: record.canonical_question, answer: record.answer, origin: 'record', ...base } as const;
        items.push({ ...question, id: `q-${record.seed}`, set: 'questions' });
        for (const scale of QUESTION_PROBE_SCALES) {
          items.push({ ...question, id: `q-${record.seed}-s${scale}`, set: 'question-scales', scale });
        }
        break;
      }
      case 'generate':
        items.push({ id: `g-${record.seed}`, set: 'generate', task: 'generate', prompt: record.canonical_prompt,
          constraints: record.constraints, full: record.full, reference: image(record, 0), origin: 'record', ...base });
        break;
      case 'edit':
        items.push({ id: `e-${record.seed}`, set: 'edit', task: 'edit', image: image(record, 0), op: record.op,
          instruction: record.canonical_instruction, source: parseScene(record.scene), target: parseScene(record.target),
          reference: image(record, 1), origin: 'record', ...base });
        break;
      case 'multiturn':
        items.push(...conversationItems(record, (i) => image(record, i)));
        break;
    }
  }
  // Describe and round-trip every record's first image (the understand records' images also at scales 1, 2, 3).
  for (const record of records) {
    const scene = parseScene(record.type === 'multiturn' ? at(record.scenes, 0, `record ${record.seed} scenes`) : record.scene);
    const base = { record: record.seed, seed: record.seed, origin: 'record', image: image(record, 0), scene } as const;
    items.push({ ...base, id: `d-${record.seed}`, set: 'describe', task: 'understand', kind: 'describe',
      question: DESCRIBE_QUESTION, answer: describe(scene) });
    items.push({ ...base, id: `r-${record.seed}`, set: 'round-trip', task: 'reconstruct' });
    if (record.type === 'understand') {
      for (const scale of ROUND_TRIP_PROBE_SCALES) {
        items.push({ ...base, id: `r-${record.seed}-s${scale}`, set: 'round-trip-scales', task: 'reconstruct', scale });
      }
    }
  }
  return items;
}

/** The turns of a conversation as single-turn items: each question or edit is asked about the latest image of the
 * conversation before it (attached by the user or the reference image of an earlier answer). */
function conversationItems(record: Extract<EvalRecord, { type: 'multiturn' }>, image: (i: number) => string): EvalItem[] {
  const items: EvalItem[] = [];
  const scene = (i: number) => parseScene(at(record.scenes, i, `record ${record.seed} scenes`));
  const base = { record: record.seed, seed: record.seed, origin: 'conversation' } as const;
  let latest: number | undefined;
  let pending: { turn: RawTurn; index: number; image: number | undefined } | undefined;
  record.turns.forEach((turn, index) => {
    if (turn.role === 'user') {
      if (turn.image !== undefined) latest = turn.image;
      pending = { turn, index, image: latest };
      return;
    }
    if (pending !== undefined) {
      const { turn: user, index: at, image: source } = pending;
      const text = user.canonical_text ?? user.text ?? '';
      const id = `${record.seed}-t${at}`;
      if (user.task === 'understand' && source !== undefined && turn.text !== undefined && user.kind !== undefined) {
        items.push({ id: `q-${id}`, set: 'questions', task: 'understand', image: image(source), scene: scene(source),
          kind: user.kind, question: text, answer: turn.text, ...base });
      } else if (user.task === 'edit' && source !== undefined && turn.image !== undefined && user.op !== undefined) {
        items.push({ id: `e-${id}`, set: 'edit', task: 'edit', image: image(source), op: user.op, instruction: text,
          source: scene(source), target: scene(turn.image), reference: image(turn.image), ...base });
      } else if (user.task === 'generate' && user.constraints !== undefined && turn.image !== undefined) {
        items.push({ id: `g-${id}`, set: 'generate', task: 'generate', prompt: text, constraints: user.constraints,
          full: true, reference: image(turn.image), ...base });
      }
    }
    pending = undefined;
    if (turn.image !== undefined) latest = turn.image;
  });
  return items;
}

/** How many items of each set a sample takes (the first ones, in eval-set order). */
export type SampleSpec = Partial<Record<ItemSet | 'generate-1' | 'generate-multi', number>>;

/** A fixed sample: the first `spec[set]` items of each set in eval-set order; `generate-1` / `generate-multi` split
 * generation by object count. Sets the spec does not name are left out. */
export function sampleItems(items: readonly EvalItem[], spec: SampleSpec): EvalItem[] {
  const taken = new Map<string, number>();
  return items.filter((item) => {
    const key = item.task === 'generate' && (spec['generate-1'] !== undefined || spec['generate-multi'] !== undefined)
      ? (item.constraints.objects.length === 1 ? 'generate-1' : 'generate-multi')
      : item.set;
    const want = spec[key as keyof SampleSpec] ?? 0;
    const n = taken.get(key) ?? 0;
    if (n >= want) return false;
    taken.set(key, n + 1);
    return true;
  });
}

/** The fixed sample of the CI test (tests/eval/model-quality.test.ts) and `npm run eval:model -- --quick`. */
export const CI_SAMPLE: SampleSpec = {
  questions: 40,
  describe: 20,
  'generate-1': 20,
  'generate-multi': 20,
  edit: 30,
  'round-trip': 30,
};

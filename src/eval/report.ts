// Figures of an evaluation: the issue's headline metrics with their targets, breakdowns (per question kind, per
// scale, per object count, per edit op), and latency per task as the batch saw it.
import type { EvalItem, ItemSet, SampleSpec } from './eval-set.ts';

export interface GradedItem {
  item: EvalItem;
  ok: boolean;
  problems: string[];
  /** Wall time of the request in the batch (ms). */
  ms?: number;
  /** understand: the model's answer; exact: also worded canonically. */
  answer?: string;
  exact?: boolean;
  /** describe: every object right (shape, colour, size, cell; none missing or extra), whatever the background. */
  objectsOk?: boolean;
  /** generate: what the checker saw when it found no valid scene. */
  seen?: string;
  /** edit: the instructed change is there / everything else is unchanged. */
  editApplied?: boolean;
  othersKept?: boolean;
  /** reconstruct: attributes kept of attributes checked. */
  kept?: number;
  attributes?: number;
}

export type MetricId =
  | 'understand.questions' | 'understand.describe' | 'generate.one-object' | 'generate.multi-object' | 'edit'
  | 'round-trip';

/**
 * The issue's targets (share of items right), measured as the product serves each task: generation and edits write
 * images at the model's default scale; questions, "Describe" and the round trip read an image given as pixels at the
 * model's reading scale (`understanding.scale`, the scale the server stores uploads at).
 */
export const TARGETS: Readonly<Record<MetricId, number>> = {
  'understand.questions': 0.95,
  'understand.describe': 0.9,
  'generate.one-object': 0.9,
  'generate.multi-object': 0.75,
  edit: 0.85,
  'round-trip': 0.95,
};

export interface Metric {
  /** Headline metrics have a MetricId and a target; breakdowns have ids like `understand.kind.color`. */
  id: string;
  label: string;
  group: 'headline' | 'understanding' | 'generation' | 'editing' | 'round trip';
  count: number;
  correct: number;
  /** correct / count, null when count is 0. */
  value: number | null;
  target?: number;
  /** value ≥ target (false when there are no items). */
  pass?: boolean;
}

export interface Latency {
  task: EvalItem['task'];
  count: number;
  p50: number;
  p90: number;
}

export interface EvalReport {
  format: 'dialect-eval/1';
  date: string;
  model: string;
  evalSet: { dir: string; records: number; seedStart: number };
  defaultScale: number | undefined;
  /** The scale and other views understanding read the images at (the bundle's, or the run's override). */
  understandingScale?: number | undefined;
  views?: number[] | undefined;
  /** The scale uploads were edited at (the bundle's, or the run's override). */
  editScale?: number | undefined;
  /** Generations and edits were asked to check themselves (src/model/self-check.ts). */
  selfCheck?: boolean;
  sample: SampleSpec | undefined;
  /** The prompt guidance every generation and edit was sent with; undefined: the bundle's default. */
  guidance?: number;
  /** The de-tokenizer guidance every written image was rendered with; undefined: the bundle's default. */
  detokGuidance?: number;
  concurrency: number;
  items: number;
  /** Every headline metric with items reached its target. */
  pass: boolean;
  metrics: Metric[];
  latency: Latency[];
  /** Wrong items (up to 20 per set), for a first look; items.jsonl in --out has all. */
  failures: { id: string; set: ItemSet; problems: string[]; answer?: string }[];
  batchSeconds: number;
  seconds: number;
  outDir: string | undefined;
}

export interface RunInfo {
  model: string;
  evalDir: string;
  records: number;
  seedStart: number;
  defaultScale: number | undefined;
  understandingScale?: number | undefined;
  views?: number[] | undefined;
  editScale?: number | undefined;
  selfCheck?: boolean;
  sample: SampleSpec | undefined;
  guidance?: number | undefined;
  detokGuidance?: number | undefined;
  concurrency: number;
  batchSeconds: number;
  seconds: number;
  outDir: string | undefined;
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (sorted[lo] as number) + ((sorted[hi] as number) - (sorted[lo] as number)) * (pos - lo);
}

const objectCount = (g: GradedItem) => (g.item.task === 'generate' ? g.item.constraints.objects.length : 0);

/** The headline metric an item counts in (none for the scale probes); summarise's headline rows are built from it. */
export function headlineOf(g: GradedItem): MetricId | undefined {
  switch (g.item.set) {
    case 'questions': return 'understand.questions';
    case 'describe': return 'understand.describe';
    case 'generate': return objectCount(g) === 1 ? 'generate.one-object' : 'generate.multi-object';
    case 'edit': return 'edit';
    case 'round-trip': return 'round-trip';
    default: return undefined;
  }
}

/** The breakdown an item falls in within its set: a question's kind, an edit's op, a prompt's object count. */
export function detailOf(g: GradedItem): string | undefined {
  const item = g.item;
  if (item.task === 'understand') return item.kind;
  if (item.task === 'edit') return item.op;
  if (item.task === 'generate') return `${objectCount(g)} objects`;
  return item.scale === undefined ? undefined : `scale ${item.scale}`;
}

export function summarise(graded: readonly GradedItem[], info: RunInfo): EvalReport {
  const metrics: Metric[] = [];
  const add = (
    id: string,
    label: string,
    group: Metric['group'],
    items: readonly GradedItem[],
    right: (g: GradedItem) => boolean = (g) => g.ok,
  ) => {
    const correct = items.filter(right).length;
    const value = items.length === 0 ? null : correct / items.length;
    const target = TARGETS[id as MetricId];
    metrics.push({
      id, label, group, count: items.length, correct, value,
      ...(target === undefined ? {} : { target, pass: value !== null && value >= target }),
    });
  };
  const inSet = (set: ItemSet) => graded.filter((g) => g.item.set === set);
  const questions = inSet('questions');
  const describe = inSet('describe');
  const generate = inSet('generate');
  const edits = inSet('edit');
  const roundTrip = inSet('round-trip');

  const inHeadline = (id: MetricId) => graded.filter((g) => headlineOf(g) === id);
  add('understand.questions', 'understanding: questions answered correctly', 'headline', inHeadline('understand.questions'));
  add('understand.describe', 'understanding: "Describe the image." all right', 'headline', inHeadline('understand.describe'));
  add('generate.one-object', 'generation: one-object prompts met', 'headline', inHeadline('generate.one-object'));
  add('generate.multi-object', 'generation: 2-3-object prompts met', 'headline', inHeadline('generate.multi-object'));
  add('edit', 'editing: target scene, others unchanged', 'headline', inHeadline('edit'));
  const readAt = info.understandingScale === undefined ? '' : ` at scale ${info.understandingScale}`;
  add('round-trip', `round trip${readAt}: every attribute kept`, 'headline', inHeadline('round-trip'));

  // Understanding: per kind, wording, origin, scale.
  for (const kind of ['describe', 'color', 'shape', 'count', 'where', 'background', 'exists'] as const) {
    add(`understand.kind.${kind}`, `questions: ${kind}`, 'understanding',
      questions.filter((g) => g.item.task === 'understand' && g.item.kind === kind));
  }
  add('understand.exact', 'questions: worded canonically too', 'understanding', questions, (g) => g.ok && g.exact === true);
  add('understand.origin.record', 'questions: single-question records', 'understanding',
    questions.filter((g) => g.item.origin === 'record'));
  add('understand.origin.conversation', 'questions: turns of conversations', 'understanding',
    questions.filter((g) => g.item.origin === 'conversation'));
  add('understand.describe.objects', '"Describe": objects right, background aside', 'understanding', describe,
    (g) => g.objectsOk === true);
  const probeRecords = new Set(inSet('question-scales').map((g) => g.item.record));
  const views = info.views ?? [];
  const reading = `${info.understandingScale ?? '?'}${views.map((s) => ` + ${s}`).join('')}`;
  add('understand.scale.default', `questions read at scale ${reading} (the model's), same records`, 'understanding',
    questions.filter((g) => g.item.origin === 'record' && probeRecords.has(g.item.record)));
  for (const scale of [1, 2, 3]) {
    add(`understand.scale.${scale}`, `questions at scale ${scale} alone`, 'understanding',
      inSet('question-scales').filter((g) => g.item.scale === scale));
  }

  // Generation: per object count, full or partial prompt.
  for (const n of [1, 2, 3]) {
    add(`generate.objects.${n}`, `generation: ${n}-object prompts`, 'generation', generate.filter((g) => objectCount(g) === n));
  }
  add('generate.full', 'generation: full prompts (every attribute)', 'generation',
    generate.filter((g) => g.item.task === 'generate' && g.item.full));
  add('generate.partial', 'generation: partial prompts', 'generation',
    generate.filter((g) => g.item.task === 'generate' && !g.item.full));

  // Editing: per op, applied, others kept.
  for (const op of ['recolor', 'move', 'remove', 'add', 'background', 'resize'] as const) {
    add(`edit.op.${op}`, `edits: ${op}`, 'editing', edits.filter((g) => g.item.task === 'edit' && g.item.op === op));
  }
  add('edit.applied', 'edits: instructed change present', 'editing', edits, (g) => g.editApplied === true);
  add('edit.others-kept', 'edits: everything else unchanged', 'editing', edits, (g) => g.othersKept === true);

  // Round trip: per scale (the probe repeats the reading scale: the same tokens), attribute share.
  const rtScales = inSet('round-trip-scales');
  for (const scale of [1, 2, 3]) {
    const role = scale === info.understandingScale ? ' (the model\'s reading scale)' : scale === info.defaultScale ? ' (the model\'s writing scale)' : '';
    add(`round-trip.scale.${scale}`, `round trip at scale ${scale}${role}`, 'round trip', rtScales.filter((g) => g.item.scale === scale));
  }
  const attributes = roundTrip.reduce((s, g) => s + (g.attributes ?? 0), 0);
  const kept = roundTrip.reduce((s, g) => s + (g.kept ?? 0), 0);
  metrics.push({ id: 'round-trip.attributes', label: 'round trip: attributes kept (of all)', group: 'round trip',
    count: attributes, correct: kept, value: attributes === 0 ? null : kept / attributes });

  const latency: Latency[] = [];
  for (const task of ['understand', 'generate', 'edit', 'reconstruct'] as const) {
    const ms = graded.filter((g) => g.item.task === task && g.ms !== undefined).map((g) => g.ms as number).sort((a, b) => a - b);
    if (ms.length > 0) latency.push({ task, count: ms.length, p50: quantile(ms, 0.5), p90: quantile(ms, 0.9) });
  }

  const failures: EvalReport['failures'] = [];
  const perSet = new Map<ItemSet, number>();
  for (const g of graded) {
    if (g.ok) continue;
    const n = perSet.get(g.item.set) ?? 0;
    perSet.set(g.item.set, n + 1);
    if (n < 20) failures.push({ id: g.item.id, set: g.item.set, problems: g.problems, ...(g.answer === undefined ? {} : { answer: g.answer }) });
  }

  const headline = metrics.filter((m) => m.group === 'headline' && m.count > 0);
  return {
    format: 'dialect-eval/1',
    date: new Date().toISOString(),
    model: info.model,
    evalSet: { dir: info.evalDir, records: info.records, seedStart: info.seedStart },
    defaultScale: info.defaultScale,
    ...(info.understandingScale === undefined ? {} : { understandingScale: info.understandingScale }),
    ...(info.views === undefined ? {} : { views: info.views }),
    ...(info.editScale === undefined ? {} : { editScale: info.editScale }),
    ...(info.selfCheck === true ? { selfCheck: true } : {}),
    sample: info.sample,
    ...(info.guidance === undefined ? {} : { guidance: info.guidance }),
    ...(info.detokGuidance === undefined ? {} : { detokGuidance: info.detokGuidance }),
    concurrency: info.concurrency,
    items: graded.length,
    pass: headline.length > 0 && headline.every((m) => m.pass === true),
    metrics,
    latency,
    failures,
    batchSeconds: info.batchSeconds,
    seconds: info.seconds,
    outDir: info.outDir,
  };
}

const pct = (v: number | null) => (v === null ? '—' : `${(v * 100).toFixed(1)}%`);

/** The figures as a plain-text table: metric, count, value, target, result. */
export function formatTable(report: EvalReport): string {
  const rows: string[][] = [['metric', 'count', 'value', 'target', 'result']];
  let group = '';
  const sep: number[] = [];
  for (const m of report.metrics) {
    if (m.group !== group) {
      if (group !== '') sep.push(rows.length);
      group = m.group;
    }
    rows.push([
      m.label, String(m.count), pct(m.value), m.target === undefined ? '' : `≥ ${pct(m.target).replace('.0%', '%')}`,
      m.target === undefined ? '' : m.count === 0 ? 'no items' : m.pass ? 'pass' : 'FAIL',
    ]);
  }
  sep.push(rows.length);
  rows.push(['latency in the batch (p50 / p90 ms)', '', '', '', '']);
  for (const l of report.latency) rows.push([`  ${l.task}`, String(l.count), `${l.p50.toFixed(0)} / ${l.p90.toFixed(0)}`, '', '']);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd();
  const out: string[] = [];
  rows.forEach((r, i) => {
    if (sep.includes(i)) out.push('');
    out.push(line(r));
    if (i === 0) out.push(widths.map((w) => '-'.repeat(w)).join('  '));
  });
  return out.join('\n');
}

/** The figures as a Markdown table (for docs/model-card.md). */
export function formatMarkdown(report: EvalReport): string {
  const out = ['| metric | count | value | target | result |', '|---|---:|---:|---:|---|'];
  for (const m of report.metrics) {
    const label = m.group === 'headline' ? `**${m.label}**` : m.label;
    out.push(`| ${label} | ${m.count} | ${pct(m.value)} | ${m.target === undefined ? '' : `≥ ${pct(m.target).replace('.0%', '%')}`} | ${m.target === undefined ? '' : m.pass ? 'pass' : '**fail**'} |`);
  }
  for (const l of report.latency) out.push(`| latency in the batch, ${l.task} (p50 / p90) | ${l.count} | ${l.p50.toFixed(0)} / ${l.p90.toFixed(0)} ms | | |`);
  return out.join('\n');
}

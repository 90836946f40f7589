// Paired comparison of two evaluations of the same items (`npm run eval:compare`): which items each model gets right
// that the other does not, per headline metric, with the standard error of the difference. Two bundles evaluated on
// the same eval set answer the same requests (fixed seeds), so pairing by item id removes the items' own difficulty
// from the comparison: a few points' change is then often well outside the noise, where two unpaired rates are not.
import { TARGETS } from './report.ts';

/** One line of an evaluation's items.jsonl (src/eval/run.ts), the fields the comparison reads. */
export interface ItemOutcome {
  id: string;
  ok: boolean;
  /** The headline metric the item counts in; absent for the scale probes. */
  headline?: string;
  /** A question's kind, an edit's op, a prompt's object count, a round trip's scale. */
  detail?: string;
}

export interface PairedRow {
  /** The headline metric, or `headline · detail` for a breakdown row. */
  group: string;
  /** Items in both runs. */
  count: number;
  rightA: number;
  rightB: number;
  /** Right in A only / in B only. */
  onlyA: number;
  onlyB: number;
  /** (rightB − rightA) / count. */
  difference: number;
  /** Standard error of `difference` over the paired items (0 when they agree everywhere). */
  standardError: number;
}

export interface PairedComparison {
  rows: PairedRow[];
  /** Items of one run that the other does not have (a different eval set, limit or sample). */
  unpaired: number;
}

/** The sets whose items count in no headline (the scale probes), so that their lines carry no `headline`. */
const PROBE_SETS = new Set(['question-scales', 'round-trip-scales']);

/** Parses items.jsonl text; a line without `headline` comes from an eval:model older than this comparison. */
export function parseItems(text: string, source: string): ItemOutcome[] {
  const items: ItemOutcome[] = [];
  for (const [index, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    const value = JSON.parse(line) as Partial<ItemOutcome> & { set?: string };
    if (typeof value.id !== 'string' || typeof value.ok !== 'boolean') {
      throw new Error(`${source}:${index + 1}: not an evaluation item (it needs "id" and "ok")`);
    }
    if (!('headline' in value) && value.set !== undefined && !PROBE_SETS.has(value.set)) {
      throw new Error(`${source}: written by an older eval:model without "headline"; evaluate again with --out`);
    }
    items.push({
      id: value.id,
      ok: value.ok,
      ...(typeof value.headline === 'string' ? { headline: value.headline } : {}),
      ...(typeof value.detail === 'string' ? { detail: value.detail } : {}),
    });
  }
  return items;
}

function row(group: string, pairs: readonly (readonly [ItemOutcome, ItemOutcome])[]): PairedRow {
  const count = pairs.length;
  const onlyA = pairs.filter(([a, b]) => a.ok && !b.ok).length;
  const onlyB = pairs.filter(([a, b]) => !a.ok && b.ok).length;
  const difference = count === 0 ? 0 : (onlyB - onlyA) / count;
  // Per item the difference is −1, 0 or +1; its sample variance over the pairs, divided by their number.
  const variance = count === 0 ? 0 : (onlyA + onlyB) / count - difference * difference;
  return {
    group,
    count,
    rightA: pairs.filter(([a]) => a.ok).length,
    rightB: pairs.filter(([, b]) => b.ok).length,
    onlyA,
    onlyB,
    difference,
    standardError: count === 0 ? 0 : Math.sqrt(Math.max(0, variance) / count),
  };
}

/** Pairs the items of A and B by id; one row per headline metric (in the order), and with `details` one
 * more per breakdown under it. */
export function comparePaired(a: readonly ItemOutcome[], b: readonly ItemOutcome[], details = false): PairedComparison {
  const byId = new Map(b.map((item) => [item.id, item]));
  const pairs: (readonly [ItemOutcome, ItemOutcome])[] = [];
  for (const item of a) {
    const other = byId.get(item.id);
    if (other !== undefined) pairs.push([item, other]);
  }
  const unpaired = a.length + b.length - 2 * pairs.length;
  const rows: PairedRow[] = [];
  for (const headline of Object.keys(TARGETS)) {
    const inHeadline = pairs.filter(([item]) => item.headline === headline);
    if (inHeadline.length === 0) continue;
    rows.push(row(headline, inHeadline));
    if (!details) continue;
    const names = [...new Set(inHeadline.map(([item]) => item.detail).filter((d): d is string => d !== undefined))];
    for (const detail of names.sort()) {
      rows.push(row(`${headline} · ${detail}`, inHeadline.filter(([item]) => item.detail === detail)));
    }
  }
  return { rows, unpaired };
}

const percent = (x: number) => `${(100 * x).toFixed(1)}%`;

/** The comparison as a Markdown table (A and B name the runs). */
export function formatComparison(comparison: PairedComparison, nameA: string, nameB: string): string {
  const lines = [
    `| figure | items | ${nameA} | ${nameB} | right only in ${nameA} / ${nameB} | difference (± SE) |`,
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const r of comparison.rows) {
    const sign = r.difference > 0 ? '+' : '';
    lines.push(
      `| ${r.group} | ${r.count} | ${percent(r.rightA / r.count)} | ${percent(r.rightB / r.count)} | ` +
        `${r.onlyA} / ${r.onlyB} | ${sign}${(100 * r.difference).toFixed(1)} ± ${(100 * r.standardError).toFixed(1)} |`,
    );
  }
  if (comparison.unpaired > 0) lines.push('', `${comparison.unpaired} items were in one run only and are left out.`);
  return lines.join('\n');
}

// The shipped model's quality guard: the evaluation of `npm run eval:model` (same code, src/eval) on a small fixed
// sample of the held-out eval set, against models/tar-shapes through `dialect batch`. A missing or broken bundle
// fails here (no skip): the bundle is the product.
//
// Thresholds: each headline figure must reach its target minus 10 points. The sample is fixed, so the result is
// reproducible, but it is small (CI_SAMPLE: 20–40 items a metric, 160 requests, ≈ 20–30 s on 2 busy cores), and a
// small sample of a model that just meets a target on the full set scatters around it by the binomial standard
// deviation sqrt(p(1-p)/n): 3.4 points for questions (n 40, 95%), 6.7 for describe and one-object generation
// (n 20, 90%), 9.7 for multi-object generation (n 20, 75%), 6.5 for edits (n 30, 85%), 4.0 for the round trip
// (n 30, 95%). A 10-point margin (1–3 standard deviations) keeps a bundle that meets the targets from failing by
// chance, while a broken one (a bad graph, a wrong tokenizer or manifest, a bad export: figures near 0, as the
// random-weight tiny bundle shows) fails by far. The full figures come from `npm run eval:model`
// (docs/model-card.md, "Quality"); `npm run eval:model -- --quick` prints this sample's table.
//
// Where a shipped bundle does not reach a target yet, that target's test is a node:test `todo` (TARGETS_NOT_MET_YET):
// it still runs and prints its figure, but it does not fail CI. 1.8.0 meets all six on the full set
// (docs/model-card.md, "The shipped bundle (1.8.0)"), so every target's test is required. REGRESSION_FLOORS below
// guard question kinds the headline figures could hide, set from the bundle's figures on this sample minus about two
// binomial standard deviations.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CI_SAMPLE, type EvalReport, formatTable, runEvaluation, SHIPPED_BUNDLE_DIR, TARGETS } from '../../src/eval/index.ts';

const MARGIN = 0.1;

/** Targets that models/tar-shapes 1.8.0 misses on the full set (docs/model-card.md, "Figures"): none. */
const TARGETS_NOT_MET_YET = new Set<string>([]);

/**
 * What 1.8.0 measurably does on this sample (`npm run eval:model -- --quick`), less about two binomial standard
 * deviations of the sample's size: colour, count and background questions 100%. The headline figures — questions
 * 97.5% (98.7% on the full set), "Describe" 95% (96.1%), one-object generation 100% (100%), 2–3-object generation
 * 80% (76.5%), edits 93.3% (90.3%), round trip at the reading scale 100% (98.3%) — are guarded by their targets'
 * tests. 1.7.0 scored 97.5 / 95 / 100 / 90 / 96.7% on the first five here and 83.3% on the round trip, then measured
 * at the writing scale (2); 1.6.0 97.5 / 90 / 95 / 65 / 73.3% (it would fail the 2–3-object and edit tests); a
 * random-weight bundle scores near chance or below (colour 1/7, background 1/3, generation and round trip 0%) and
 * fails everything by far.
 */
const REGRESSION_FLOORS: Record<string, number> = {
  'understand.kind.color': 0.6,
  'understand.kind.count': 0.6,
  'understand.kind.background': 0.6,
};

describe('quality of the shipped model (models/tar-shapes) on a fixed sample of the held-out eval set', () => {
  // One run for all the tests below; each fails (not skips) when the bundle is missing or cannot run.
  let run: Promise<EvalReport> | undefined;
  const evaluate = () => {
    run ??= (async () => {
      assert.ok(existsSync(join(SHIPPED_BUNDLE_DIR, 'manifest.json')), `no model bundle at ${SHIPPED_BUNDLE_DIR}`);
      const report = await runEvaluation({ model: SHIPPED_BUNDLE_DIR, sample: CI_SAMPLE });
      process.stderr.write(`${formatTable(report)}\n`);
      return report;
    })();
    return run;
  };

  it('answers every request of the sample', async () => {
    const report = await evaluate();
    const errors = report.failures.filter((f) => f.problems.some((p) => /^(no answer|[A-Z_]+: |cannot read)/.test(p)));
    assert.deepEqual(errors, []);
  });

  for (const [id, floor] of Object.entries(REGRESSION_FLOORS)) {
    it(`${id}: no regression below ${Math.round(floor * 100)}%`, async () => assertAtLeast(await evaluate(), id, floor));
  }

  for (const [id, target] of Object.entries(TARGETS)) {
    const todo = TARGETS_NOT_MET_YET.has(id) ? 'models/tar-shapes does not meet this target yet' : undefined;
    it(`${id}: at least ${Math.round((target - MARGIN) * 100)}% (target ${Math.round(target * 100)}% less ${MARGIN * 100} points)`, { todo }, async () => {
      const report = await evaluate();
      const metric = report.metrics.find((m) => m.id === id);
      assert.ok(metric && metric.count > 0, `no items for ${id}`);
      assert.ok(
        (metric.value ?? 0) >= target - MARGIN - 1e-9,
        `${metric.label}: ${metric.correct}/${metric.count} = ${((metric.value ?? 0) * 100).toFixed(1)}%, ` +
          `below ${Math.round((target - MARGIN) * 100)}%; failures: ${JSON.stringify(report.failures.filter((f) => f.set === metricSet(id)).slice(0, 5))}`,
      );
    });
  }
});

/**
 * With the self-check a request may ask for (docs/model-card.md, "The shipped bundle (1.4.2)"), on the same sample's
 * generations and edits (`npm run eval:model -- --quick --self-check`, 1.8.0): one-object 100%, 2–3-object 80%,
 * edits 100% (without it 100 / 80 / 93.3%; on the full set the check adds 6.3 and 4.2 points to 2–3-object prompts
 * and edits). The floors lie about one binomial standard deviation below the checked figures, so they catch a checked
 * path that breaks or writes worse images, but not a check that does nothing (a judge that passes everything, a
 * flag dropped on the way): tests/model/self-check.test.ts checks the mechanism with a scripted judge (which image
 * is kept, what the judge is asked, that nothing changes without the flag) and tests/server/self-check.test.ts the
 * API's flag.
 */
const SELF_CHECK_FLOORS: Record<string, number> = {
  'generate.one-object': 0.95,
  'generate.multi-object': 0.7,
  'edit': 0.9,
};

describe('the self-check of the shipped model, on the same sample', () => {
  let run: Promise<EvalReport> | undefined;
  const evaluate = () =>
    (run ??= runEvaluation({ model: SHIPPED_BUNDLE_DIR, sample: CI_SAMPLE, tasks: ['generate', 'edit'], selfCheck: true }));

  for (const [id, floor] of Object.entries(SELF_CHECK_FLOORS)) {
    it(`${id} with self-check: at least ${Math.round(floor * 100)}%`, async () => assertAtLeast(await evaluate(), id, floor));
  }
});

/** The report's metric `id` has items and reaches `floor`. */
function assertAtLeast(report: EvalReport, id: string, floor: number): void {
  const metric = report.metrics.find((m) => m.id === id);
  assert.ok(metric && metric.count > 0, `no items for ${id}`);
  assert.ok(
    (metric.value ?? 0) >= floor,
    `${metric.label}: ${metric.correct}/${metric.count} = ${((metric.value ?? 0) * 100).toFixed(1)}%, below ${Math.round(floor * 100)}%`,
  );
}

function metricSet(id: string): string {
  return id.startsWith('understand.questions') ? 'questions'
    : id.startsWith('understand.describe') ? 'describe'
    : id.startsWith('generate') ? 'generate'
    : id;
}

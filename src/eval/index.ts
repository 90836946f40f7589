// The model evaluation (`npm run eval:model`, tests/eval): held-out eval set → `dialect batch` → graders.
export * from './eval-set.ts';
export * from './report.ts';
export * from './run.ts';
export * from './describe-failures.ts';
export * from './compare.ts';

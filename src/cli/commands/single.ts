import { parseArgs } from 'node:util';
import {
  loadModelFromFlags,
  modelFlags,
  parseOptionalInteger,
  parseOptionalNumber,
  requestFlags,
} from '../model-options.ts';
import { ProgressLine } from '../progress.ts';
import { type CliRequest, MAX_GUIDANCE, MAX_TEMPERATURE, runRequest } from '../requests.ts';
import { UsageError } from '../usage-error.ts';

type Task = CliRequest['task'];

/** `--views 2,3` (or `--views none`): the scales of understanding's other views of the image. */
function parseViews(text: string | undefined): number[] | undefined {
  if (text === undefined) return undefined;
  if (text === 'none') return [];
  return text.split(',').map((part) => parseOptionalInteger('--views', part, 1, 16) as number);
}

/** `dialect understand | generate | edit | reconstruct`: one request, the answer on stdout. */
export async function runSingle(task: Task, argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: { ...modelFlags, ...requestFlags, image: { type: 'string' }, out: { type: 'string' } },
  });
  if (task === 'reconstruct') {
    if (positionals.length !== 0) throw new UsageError('reconstruct takes no prompt, only --image and --out');
  } else if (positionals.length !== 1) {
    throw new UsageError(`${task} takes exactly one quoted ${task === 'understand' ? 'question' : 'prompt'}`);
  }
  const prompt = positionals[0] as string;
  const seed = parseOptionalInteger('--seed', values.seed, 0, 2 ** 32 - 1);
  const scale = parseOptionalInteger('--scale', values.scale, 1, 3);
  const need = (flag: 'image' | 'out'): string => {
    const value = values[flag];
    if (value === undefined) throw new UsageError(`${task} needs --${flag}`);
    return value;
  };
  const temperature = parseOptionalNumber('--temperature', values.temperature, 0, MAX_TEMPERATURE);
  const guidance = parseOptionalNumber('--guidance', values.guidance, 0, MAX_GUIDANCE);
  const detokGuidance = parseOptionalNumber('--detok-guidance', values['detok-guidance'], 0, MAX_GUIDANCE);
  const views = parseViews(values.views);
  if (views !== undefined && task !== 'understand') throw new UsageError(`${task} takes no --views`);
  if (temperature !== undefined && task === 'reconstruct') throw new UsageError('reconstruct takes no --temperature');
  if (guidance !== undefined && task !== 'generate' && task !== 'edit') throw new UsageError(`${task} takes no --guidance`);
  if (detokGuidance !== undefined && task === 'understand') throw new UsageError('understand takes no --detok-guidance');
  if (values['self-check'] === true && task !== 'generate' && task !== 'edit') throw new UsageError(`${task} takes no --self-check`);
  const withSeed = seed === undefined ? {} : { seed };
  const withScale = scale === undefined ? {} : { scale };
  const withTemperature = temperature === undefined ? {} : { temperature };
  const withGuidance = guidance === undefined ? {} : { guidance };
  const withDetokGuidance = detokGuidance === undefined ? {} : { detokGuidance };
  const withSelfCheck = values['self-check'] === true ? { selfCheck: true } : {};
  let request: CliRequest;
  switch (task) {
    case 'understand':
      request = { task, image: need('image'), prompt, ...withSeed, ...withScale, ...(views === undefined ? {} : { views }), ...withTemperature };
      break;
    case 'generate':
      request = { task, prompt, out: need('out'), ...withSeed, ...withScale, ...withTemperature, ...withGuidance, ...withDetokGuidance, ...withSelfCheck };
      break;
    case 'edit':
      request = {
        task,
        image: need('image'),
        prompt,
        out: need('out'),
        ...withSeed,
        ...withScale,
        ...withTemperature,
        ...withGuidance,
        ...withDetokGuidance,
        ...withSelfCheck,
      };
      break;
    case 'reconstruct':
      request = { task, image: need('image'), out: need('out'), ...withSeed, ...withScale, ...withDetokGuidance };
      break;
  }

  const model = await loadModelFromFlags(values);
  const progress = new ProgressLine();
  try {
    const result = await runRequest(model, request, process.cwd(), (event) => progress.stage(event));
    progress.clear();
    if (result.text !== undefined) process.stdout.write(`${result.text}\n`);
    else process.stderr.write(`wrote ${result.image} (seed ${result.seed})\n`);
    return 0;
  } finally {
    progress.clear();
    await model.dispose();
  }
}

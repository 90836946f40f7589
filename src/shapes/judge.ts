/**
 * The shapes world's judge for a model's self-check (src/model/self-check.ts): whether the model's own description of
 * an image it wrote meets the request, in the shapes language. A bundle names it (`selfCheck.judge: "shapes"`); the
 * CLI and the server give the runtime this module's URL, so the runtime itself knows no world.
 */
import type { JudgeRequest } from '../model/index.ts';
import { applyEdit, parseDescription, parsePrompt, unmetConstraints } from './language.ts';
import { sameScene } from './scene.ts';

/** The URL the composition roots give the runtime as `judgeModule`. */
export const JUDGE_MODULE = import.meta.url;

/**
 * A generation passes when the description has every attribute the prompt asks for (and its object count); an edit
 * when the description is the model's own description of the input with the instruction applied. A description
 * that does not parse fails; a request the shapes language cannot read (a free-form prompt, an edit of an image the
 * model could not describe) cannot be judged and passes, so the first image is kept.
 */
export function judgeShapes(request: JudgeRequest, reading: string): boolean {
  if (request.task === 'generate') {
    const constraints = parsePrompt(request.prompt);
    if (constraints === null) return true;
    const seen = parseDescription(reading);
    return seen !== null && unmetConstraints(seen, constraints).length === 0;
  }
  const before = request.input === undefined ? null : parseDescription(request.input);
  const expected = before === null ? null : applyEdit(before, request.prompt);
  if (expected === null) return true;
  const seen = parseDescription(reading);
  return seen !== null && sameScene(seen, expected);
}

export const judges = { shapes: judgeShapes };

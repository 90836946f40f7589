// Graders for the four tasks: an understanding answer against the canonical answer, a generated image against the
// prompt's constraints, an edit result against the expected scene, and a round trip (encode → decode) against the
// original scene. Images are raw pixels (see checker.ts; decode files with image.ts) or a ready Detection.
import { type Detection, type RawImage, detect } from './checker.ts';
import {
  type Constraints, type QuestionKind, answerValue, applyEdit, inferKind, normaliseAnswer, parsePrompt, unmetConstraints,
} from './language.ts';
import { type Scene, type ShapeObject, objectKey, sortObjects } from './scene.ts';

export interface Grade {
  ok: boolean;
  /** Human-readable reasons when not ok. */
  problems: string[];
}

export interface AnswerGrade extends Grade {
  kind: QuestionKind | null;
  /** The answer has the canonical style exactly (up to case, spaces and the final period). */
  exact: boolean;
  got: string | null;
  want: string | null;
}

export interface ImageGrade extends Grade {
  detection: Detection;
}

function toDetection(image: RawImage | Detection): Detection {
  return 'problems' in image && 'objects' in image ? image : detect(image);
}

/** Grades an understanding answer. `ok`: the answer means what the canonical answer means (a description must
 * name exactly the same objects and background, in any order); `exact`: it is also worded canonically. */
export function gradeAnswer(answer: string, expected: string, kind?: QuestionKind): AnswerGrade {
  const k = kind ?? inferKind(expected);
  const exact = normaliseAnswer(answer) === normaliseAnswer(expected);
  if (k === null) {
    return { ok: exact, exact, kind: null, got: normaliseAnswer(answer), want: normaliseAnswer(expected),
      problems: exact ? [] : [`answer "${answer}" differs from "${expected}"`] };
  }
  const want = answerValue(expected, k);
  const got = answerValue(answer, k);
  const problems: string[] = [];
  if (want === null) problems.push(`expected answer "${expected}" is not a ${k} answer`);
  else if (got === null) problems.push(`answer "${answer}" states no ${k}`);
  else if (got !== want) problems.push(`${k}: got ${got}, want ${want}`);
  return { ok: problems.length === 0, exact: exact && problems.length === 0, kind: k, got, want, problems };
}

/** Grades a generated image against a prompt (text, parsed with parsePrompt) or its constraints: the object count,
 * the background if stated, and every stated attribute of every object (one-to-one). */
export function gradeGeneration(image: RawImage | Detection, prompt: string | Constraints): ImageGrade {
  const detection = toDetection(image);
  const constraints = typeof prompt === 'string' ? parsePrompt(prompt) : prompt;
  if (!constraints) return { ok: false, problems: [`prompt not understood: "${String(prompt)}"`], detection };
  if (!detection.scene) return { ok: false, problems: detection.problems.map((p) => `image: ${p}`), detection };
  const problems = unmetConstraints(detection.scene, constraints);
  return { ok: problems.length === 0, problems, detection };
}

function diffObjects(want: readonly ShapeObject[], got: readonly ShapeObject[]): { missing: string[]; extra: string[] } {
  const left = new Map<string, number>();
  for (const o of got) left.set(objectKey(o), (left.get(objectKey(o)) ?? 0) + 1);
  const missing: string[] = [];
  for (const o of want) {
    const k = objectKey(o);
    const n = left.get(k) ?? 0;
    if (n > 0) left.set(k, n - 1);
    else missing.push(k);
  }
  const extra = [...left.entries()].flatMap(([k, n]) => Array.from({ length: n }, () => k));
  return { missing, extra };
}

export interface EditGrade extends ImageGrade {
  /** Every change from source to expected is in the image (the edited object, added/removed, background). */
  editApplied: boolean;
  /** Every object that the edit does not touch is still there, unchanged. */
  othersKept: boolean;
}

/** Grades an edit result against the scene the edit should produce. With the source scene, the grade also says
 * whether the instructed change happened (editApplied) and whether everything else stayed (othersKept). */
export function gradeEdit(image: RawImage | Detection, expected: Scene, source?: Scene): EditGrade {
  const detection = toDetection(image);
  const got = detection.scene;
  const problems: string[] = detection.problems.map((p) => `image: ${p}`);
  const gotObjects = got ? got.objects : sortObjects(detection.objects);
  const gotBackground = detection.background;
  const { missing, extra } = diffObjects(expected.objects, gotObjects);
  if (gotBackground !== expected.background) problems.push(`background is ${gotBackground}, want ${expected.background}`);
  for (const m of missing) problems.push(`missing ${m}`);
  for (const e of extra) problems.push(`unexpected ${e}`);
  let editApplied = problems.length === 0;
  let othersKept = problems.length === 0;
  if (source) {
    const kept = diffObjects(source.objects, expected.objects);   // kept = in both
    const keptKeys = new Set(source.objects.map(objectKey).filter((k) => !kept.missing.includes(k)));
    const changedWant = expected.objects.map(objectKey).filter((k) => !keptKeys.has(k));
    const removed = kept.missing;                                 // in source, not in expected
    const gotKeys = gotObjects.map(objectKey);
    const bgChanged = source.background !== expected.background;
    editApplied = changedWant.every((k) => gotKeys.includes(k)) && removed.every((k) => !gotKeys.includes(k))
      && (!bgChanged || gotBackground === expected.background);
    // Cells the edit touches (edited, moved, added or removed objects); anything unexpected elsewhere is a change
    // the instruction did not ask for.
    const touched = new Set([...source.objects, ...expected.objects]
      .filter((o) => !keptKeys.has(objectKey(o))).map((o) => o.position));
    const extraElsewhere = gotObjects.filter((o) => !touched.has(o.position) && !keptKeys.has(objectKey(o)));
    othersKept = [...keptKeys].every((k) => gotKeys.includes(k))
      && (bgChanged || gotBackground === source.background) && extraElsewhere.length === 0;
  }
  return { ok: problems.length === 0, problems, detection, editApplied, othersKept };
}

/** Grades an edit given the source scene and the instruction (the expected scene comes from applyEdit). */
export function gradeEditInstruction(image: RawImage | Detection, source: Scene, instruction: string): EditGrade {
  const expected = applyEdit(source, instruction);
  if (!expected) {
    return { ok: false, problems: [`instruction not understood or invalid: "${instruction}"`],
      detection: toDetection(image), editApplied: false, othersKept: false };
  }
  return gradeEdit(image, expected, source);
}

export interface RoundTripGrade extends ImageGrade {
  /** Attributes checked and attributes kept (background + 4 per original object). */
  attributes: number;
  kept: number;
}

/** Grades a round trip: the decoded image must keep every attribute of the original scene (background, and the
 * shape, colour, size and cell of every object) and add nothing. */
export function gradeRoundTrip(image: RawImage | Detection, original: Scene): RoundTripGrade {
  const detection = toDetection(image);
  const problems: string[] = [];
  let attributes = 1;
  let kept = 0;
  if (detection.background === original.background) kept++;
  else problems.push(`background is ${detection.background}, want ${original.background}`);
  const found = sortObjects(detection.objects);
  for (const o of sortObjects(original.objects)) {
    attributes += 4;
    const d = found.find((x) => x.position === o.position);
    if (!d) { problems.push(`nothing ${o.position} (want ${objectKey(o)})`); continue; }
    kept++;
    for (const attr of ['shape', 'color', 'size'] as const) {
      if (d[attr] === o[attr]) kept++;
      else problems.push(`${o.position}: ${attr} is ${d[attr]}, want ${o[attr]}`);
    }
  }
  for (const d of found) {
    if (!original.objects.some((o) => o.position === d.position)) problems.push(`unexpected ${objectKey(d)}`);
  }
  if (found.length !== new Set(found.map((d) => d.position)).size) problems.push('two objects in one cell');
  return { ok: problems.length === 0, problems, detection, attributes, kept };
}

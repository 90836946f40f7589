// Language of the shapes world on the TypeScript side: the canonical description, parsers for descriptions,
// generation prompts (full or partial) and edit instructions, and answer normalisation for grading. It reads what
// training/shapes/language.py writes (see docs/shapes-world.md for the canonical formats).
import { type Scene, type ShapeObject, sceneKey, sortObjects } from './scene.ts';
import {
  type Background, type Color, type Position, type Shape, type Size,
  BACKGROUND_NAMES, COLOR_NAMES, MAX_OBJECTS, NUMBER_WORDS, POSITIONS, POSITION_PHRASES, POSITION_VARIANTS,
  SHAPES, SHAPE_PLURALS, isBackground, isColor, isShape, isSize,
} from './vocab.ts';

/** What a generation prompt states about one object; null = left to the model. */
export interface ObjectConstraint {
  shape: Shape | null;
  color: Color | null;
  size: Size | null;
  position: Position | null;
}

/** What a generation prompt states. The object count is always stated (objects.length). */
export interface Constraints {
  background: Background | null;
  objects: ObjectConstraint[];
}

// ---------------------------------------------------------------------------------------------------------------
// Canonical phrases

export function article(word: string): 'a' | 'an' {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}

export function joinPhrases(parts: readonly string[]): string {
  if (parts.length <= 1) return parts[0] ?? '';
  return `${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1]}`;
}

/** "a small blue square at the top left" */
export function objectPhrase(o: ShapeObject): string {
  return `a ${o.size} ${o.color} ${o.shape} ${POSITION_PHRASES[o.position]}`;
}

/** The canonical description, also the canonical answer to "Describe the image.":
 * "a small blue square at the top left and a large red circle in the center on a white background." */
export function describe(scene: Scene): string {
  return `${joinPhrases(sortObjects(scene.objects).map(objectPhrase))} on a ${scene.background} background.`;
}

/** The canonical name of an object: its shape when unique in the scene, else colour and shape when that is unique,
 * else null (cannot be named unambiguously). */
export function reference(scene: Scene, obj: ShapeObject): string | null {
  if (scene.objects.filter((o) => o.shape === obj.shape).length === 1) return obj.shape;
  if (scene.objects.filter((o) => o.shape === obj.shape && o.color === obj.color).length === 1) {
    return `${obj.color} ${obj.shape}`;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------------------------
// Tokens

/** Lower case, British spellings and "grey" folded, punctuation other than commas dropped, spaces collapsed. */
export function normaliseText(text: string): string {
  return text
    .toLowerCase()
    .replace(/[’']s\b/g, ' is')
    .replace(/\bgrey\b/g, 'gray')
    .replace(/\bcolour(s|ed)?\b/g, 'color$1')
    .replace(/\bcentre\b/g, 'center')
    .replace(/[^a-z0-9,\s]+/g, ' ')
    .replace(/\s*,\s*/g, ', ')
    .replace(/\s+/g, ' ')
    .replace(/^[\s,]+|[\s,]+$/g, '');
}

function tokenize(text: string): string[] {
  return normaliseText(text).replace(/,/g, ' , ').split(/\s+/).filter((t) => t.length > 0);
}

const POSITION_TOKENS: { tokens: string[]; position: Position }[] = POSITIONS
  .flatMap((position) => POSITION_VARIANTS[position].map((v) => ({ tokens: v.split(' '), position })))
  .sort((a, b) => b.tokens.length - a.tokens.length);

const POSITION_NAME_TOKENS: { tokens: string[]; position: Position }[] = [
  ...POSITIONS.map((position) => ({ tokens: position.split(' '), position })),
  { tokens: ['middle'], position: 'center' as Position },
  { tokens: ['upper', 'left'], position: 'top left' as Position },
  { tokens: ['upper', 'right'], position: 'top right' as Position },
  { tokens: ['lower', 'left'], position: 'bottom left' as Position },
  { tokens: ['lower', 'right'], position: 'bottom right' as Position },
  { tokens: ['top', 'left', 'corner'], position: 'top left' as Position },
  { tokens: ['top', 'right', 'corner'], position: 'top right' as Position },
  { tokens: ['bottom', 'left', 'corner'], position: 'bottom left' as Position },
  { tokens: ['bottom', 'right', 'corner'], position: 'bottom right' as Position },
].sort((a, b) => b.tokens.length - a.tokens.length);

function startsWith(tokens: readonly string[], i: number, seq: readonly string[]): boolean {
  return seq.every((t, k) => tokens[i + k] === t);
}

interface Match<T> { value: T; next: number }

/** A position phrase at tokens[i]: any variant ("in the top left corner"), or "to the {position}". */
function matchPosition(tokens: readonly string[], i: number): Match<Position> | null {
  for (const p of POSITION_TOKENS) if (startsWith(tokens, i, p.tokens)) return { value: p.position, next: i + p.tokens.length };
  for (const lead of [['over', 'to', 'the'], ['to', 'the'], ['at', 'the'], ['in', 'the'], ['on', 'the']]) {
    if (!startsWith(tokens, i, lead)) continue;
    for (const p of POSITION_NAME_TOKENS) {
      if (startsWith(tokens, i + lead.length, p.tokens)) return { value: p.position, next: i + lead.length + p.tokens.length };
    }
  }
  return null;
}

const COUNT_WORDS: Record<string, number> = { a: 1, an: 1, one: 1, '1': 1, two: 2, '2': 2, three: 3, '3': 3 };
const GENERIC_NOUNS = new Set(['shape', 'shapes', 'object', 'objects', 'thing', 'things']);
const PLURAL_TO_SHAPE: Record<string, Shape> = Object.fromEntries(
  SHAPES.map((s) => [SHAPE_PLURALS[s], s]),
) as Record<string, Shape>;

/** "[det] [size] [color] noun [position]" at tokens[i]; a count > 1 yields that many constraints. */
function matchObjects(tokens: readonly string[], i: number): Match<ObjectConstraint[]> | null {
  const det = tokens[i];
  const n = det === undefined ? undefined : COUNT_WORDS[det];
  if (n === undefined) return null;
  let k = i + 1;
  let size: Size | null = null;
  let color: Color | null = null;
  for (let round = 0; round < 2; round++) {
    const t = tokens[k] ?? '';
    if (size === null && isSize(t)) { size = t; k++; continue; }
    if (size === null && (t === 'big' || t === 'small')) { size = t === 'big' ? 'large' : 'small'; k++; continue; }
    if (color === null && isColor(t)) { color = t; k++; continue; }
  }
  const noun = tokens[k] ?? '';
  let shape: Shape | null = null;
  if (isShape(noun)) shape = noun;
  else if (PLURAL_TO_SHAPE[noun]) shape = PLURAL_TO_SHAPE[noun] ?? null;
  else if (!GENERIC_NOUNS.has(noun)) return null;
  k++;
  let position: Position | null = null;
  const pos = matchPosition(tokens, k);
  if (pos) { position = pos.value; k = pos.next; }
  if (position !== null && n > 1) return null;
  return { value: Array.from({ length: n }, () => ({ shape, color, size, position })), next: k };
}

function matchBackground(tokens: readonly string[], i: number): Match<Background> | null {
  let k = i;
  if (['on', 'with', 'against', 'over'].includes(tokens[k] ?? '')) k++;
  if (['a', 'an', 'the'].includes(tokens[k] ?? '')) k++;
  const bg = tokens[k] ?? '';
  if (!isBackground(bg) || tokens[k + 1] !== 'background') return null;
  return { value: bg, next: k + 2 };
}

function matchObjectList(tokens: readonly string[], i: number): Match<ObjectConstraint[]> | null {
  const first = matchObjects(tokens, i);
  if (!first) return null;
  const objects = [...first.value];
  let k = first.next;
  for (;;) {
    let s = k;
    if (tokens[s] === ',') s++;
    if (tokens[s] === 'and') s++;
    if (s === k) break;
    const more = matchObjects(tokens, s);
    if (!more) break;
    objects.push(...more.value);
    k = more.next;
  }
  return { value: objects, next: k };
}

/** Parses a generation prompt (a canonical description, "draw ..." variants, or a partial prompt such as
 * "two green squares on a black background") into the constraints it states. Any leading words ("please draw",
 * "generate an image of") are skipped. Null when no object list is found or the prompt asks for more than 3. */
export function parsePrompt(text: string): Constraints | null {
  const tokens = tokenize(text);
  for (let i = 0; i < tokens.length; i++) {
    const list = matchObjectList(tokens, i);
    if (!list) continue;
    let k = list.next;
    let background: Background | null = null;
    if (tokens[k] === ',') k++;
    const bg = matchBackground(tokens, k);
    if (bg) { background = bg.value; k = bg.next; }
    if (k !== tokens.length) continue;
    if (background === null) {
      // "on a black background, a red circle"
      const lead = matchBackground(tokens.slice(0, i).filter((t) => t !== ','), 0);
      if (lead) background = lead.value;
    }
    if (list.value.length > MAX_OBJECTS) return null;
    return { background, objects: list.value };
  }
  return null;
}

/** Parses a full description (every attribute of every object, and the background) into a scene; null otherwise. */
export function parseDescription(text: string): Scene | null {
  const c = parsePrompt(text);
  if (!c || c.background === null) return null;
  const objects: ShapeObject[] = [];
  for (const o of c.objects) {
    if (o.shape === null || o.color === null || o.size === null || o.position === null) return null;
    objects.push({ shape: o.shape, color: o.color, size: o.size, position: o.position });
  }
  if (new Set(objects.map((o) => o.position)).size !== objects.length) return null;
  return { background: c.background, objects: sortObjects(objects) };
}

/** Constraints that a full scene states (every attribute). */
export function sceneConstraints(scene: Scene): Constraints {
  return {
    background: scene.background,
    objects: sortObjects(scene.objects).map((o) => ({ shape: o.shape, color: o.color, size: o.size, position: o.position })),
  };
}

function objectMeets(o: ShapeObject, c: ObjectConstraint): boolean {
  return (c.shape === null || c.shape === o.shape) && (c.color === null || c.color === o.color)
    && (c.size === null || c.size === o.size) && (c.position === null || c.position === o.position);
}

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((x, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((p) => [x, ...p]));
}

/** Unmet constraints of a scene (empty = satisfied): same object count, stated background, and a one-to-one
 * assignment of objects to object constraints. */
export function unmetConstraints(scene: Scene, c: Constraints): string[] {
  const problems: string[] = [];
  if (c.background !== null && c.background !== scene.background) {
    problems.push(`background is ${scene.background}, wanted ${c.background}`);
  }
  if (scene.objects.length !== c.objects.length) {
    problems.push(`${scene.objects.length} objects, wanted ${c.objects.length}`);
    return problems;
  }
  const ok = permutations(scene.objects).some((perm) => perm.every((o, i) => objectMeets(o, c.objects[i]!)));
  if (!ok) {
    problems.push(`objects [${scene.objects.map((o) => `${o.size} ${o.color} ${o.shape} ${o.position}`).join(', ')}] `
      + `do not meet [${c.objects.map(constraintText).join(', ')}]`);
  }
  return problems;
}

function constraintText(c: ObjectConstraint): string {
  return [c.size, c.color, c.shape ?? 'shape', c.position ? `@ ${c.position}` : null].filter(Boolean).join(' ');
}

/** Constraints as a canonical, order-free string (for comparing two constraint sets). */
export function constraintsKey(c: Constraints): string {
  return `${c.background ?? '*'}: ${c.objects.map(constraintText).sort().join('; ')}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Answers

export type QuestionKind = 'describe' | 'color' | 'shape' | 'count' | 'where' | 'background' | 'exists';
export const QUESTION_KINDS: readonly QuestionKind[] = ['describe', 'color', 'shape', 'count', 'where', 'background', 'exists'];

/** An answer reduced to its style-free form: lower case, single spaces, no final punctuation. */
export function normaliseAnswer(text: string): string {
  return normaliseText(text).replace(/,$/, '');
}

function findPosition(tokens: readonly string[]): Position | null {
  for (let i = 0; i < tokens.length; i++) {
    const m = matchPosition(tokens, i);
    if (m) return m.value;
  }
  for (let i = 0; i < tokens.length; i++) {
    for (const p of POSITION_NAME_TOKENS) if (startsWith(tokens, i, p.tokens)) return p.position;
  }
  return null;
}

function single<T extends string>(tokens: readonly string[], names: readonly T[]): T | null {
  const found = new Set(tokens.filter((t): t is T => (names as readonly string[]).includes(t)));
  return found.size === 1 ? [...found][0]! : null;
}

/** The meaning of an answer of the given kind ("Red." and "it is red" → "red"; "2" → "two"; a description →
 * its scene key), or null when the answer does not state one. */
export function answerValue(text: string, kind: QuestionKind): string | null {
  const tokens = tokenize(text).filter((t) => t !== ',');
  switch (kind) {
    case 'describe': {
      const scene = parseDescription(text);
      return scene ? sceneKey(scene) : null;
    }
    case 'color': return single(tokens, COLOR_NAMES);
    case 'background': return single(tokens, BACKGROUND_NAMES);
    case 'shape': {
      const s = single(tokens.map((t) => PLURAL_TO_SHAPE[t] ?? t), SHAPES);
      return s;
    }
    case 'count': {
      const words = tokens.map((t) => (t in COUNT_WORDS && t !== 'a' && t !== 'an' ? NUMBER_WORDS[COUNT_WORDS[t]!]! : t));
      const nums = new Set(words.filter((t) => ['one', 'two', 'three'].includes(t) || /^\d+$/.test(t)));
      return nums.size === 1 ? [...nums][0]! : null;
    }
    case 'where': return findPosition(tokens);
    case 'exists': {
      const t = tokens[0];
      return t === 'yes' || t === 'no' ? t : null;
    }
  }
}

/** The kind of question a canonical answer answers (for grading when the kind is not recorded). */
export function inferKind(expected: string): QuestionKind | null {
  const n = normaliseAnswer(expected);
  if (n.endsWith('background') && parseDescription(expected)) return 'describe';
  if (n === 'yes' || n === 'no') return 'exists';
  if (['one', 'two', 'three'].includes(n)) return 'count';
  if (isBackground(n)) return 'background';
  if (isColor(n)) return 'color';
  if (/^an? (circle|square|triangle)$/.test(n)) return 'shape';
  if (POSITIONS.some((p) => POSITION_PHRASES[p] === n)) return 'where';
  return null;
}

// ---------------------------------------------------------------------------------------------------------------
// Edit instructions

export type EditOp = 'recolor' | 'move' | 'remove' | 'add' | 'background' | 'resize';

export interface ParsedEdit {
  op: EditOp;
  /** Index in sortObjects(scene.objects) of the named object (recolor, move, remove, resize). */
  index?: number;
  color?: Color;
  size?: Size;
  position?: Position;
  shape?: Shape;
  background?: Background;
}

/** Objects of the scene that "[size] [color] shape" at tokens[i] names; the match end. */
function matchReference(tokens: readonly string[], i: number, objects: readonly ShapeObject[]):
  { indices: number[]; next: number } | null {
  let k = i;
  let size: Size | null = null;
  let color: Color | null = null;
  const t0 = tokens[k] ?? '';
  if (isSize(t0)) { size = t0; k++; }
  const t1 = tokens[k] ?? '';
  if (isColor(t1)) { color = t1; k++; }
  const noun = tokens[k] ?? '';
  let shape: Shape | null = null;
  if (isShape(noun)) shape = noun;
  else if (!((noun === 'object' || noun === 'one' || noun === 'shape') && color !== null)) return null;
  k++;
  const indices = objects.flatMap((o, idx) => ((shape === null || o.shape === shape) && (color === null || o.color === color)
    && (size === null || o.size === size) ? [idx] : []));
  return { indices, next: k };
}

const REMOVE_LEADS = [['remove'], ['delete'], ['erase'], ['take', 'away'], ['get', 'rid', 'of']];

/** Parses an edit instruction against the scene it edits. Null when the instruction is not understood, names no
 * object or an ambiguous one, or asks for an invalid edit (occupied cell, no change, 0 or 4 objects). */
export function parseEdit(scene: Scene, instruction: string): ParsedEdit | null {
  let tokens = tokenize(instruction).filter((t) => t !== ',');
  if (tokens[0] === 'please') tokens = tokens.slice(1);
  if (tokens[tokens.length - 1] === 'please') tokens = tokens.slice(0, -1);
  if (tokens[tokens.length - 1] === 'instead') tokens = tokens.slice(0, -1);
  if (startsWith(tokens, tokens.length - 3, ['from', 'the', 'image'])) tokens = tokens.slice(0, -3);
  if (tokens[0] === 'also') tokens = tokens.slice(1);
  const objects = sortObjects(scene.objects);

  if (tokens.includes('background')) {
    const bgs = tokens.filter((t) => isBackground(t));
    const bg = bgs[bgs.length - 1] as Background | undefined;
    if (!bg || bg === scene.background) return null;
    return { op: 'background', background: bg };
  }

  const verb = tokens[0] ?? '';
  if (['add', 'insert', 'put', 'draw', 'place'].includes(verb) && (tokens[1] === 'a' || tokens[1] === 'an')) {
    const m = matchObjects(tokens, 1);
    if (!m || m.next !== tokens.length) return null;
    const o = m.value[0]!;
    if (m.value.length !== 1 || !o.shape || !o.color || !o.size || !o.position) return null;
    if (objects.length >= MAX_OBJECTS || objects.some((x) => x.position === o.position)) return null;
    return { op: 'add', shape: o.shape, color: o.color, size: o.size, position: o.position };
  }

  // Every other edit names one object: "... the [size] [color] shape ..."
  let ref: { indices: number[]; next: number } | null = null;
  let refAt = -1;
  for (let j = 0; j < tokens.length && !ref; j++) {
    if (tokens[j] !== 'the') continue;
    ref = matchReference(tokens, j + 1, objects);
    refAt = j;
  }
  if (!ref || ref.indices.length !== 1) return null;
  const index = ref.indices[0]!;
  const obj = objects[index]!;
  const lead = tokens.slice(0, refAt);
  let rest = tokens.slice(ref.next);

  if (REMOVE_LEADS.some((l) => startsWith(lead, 0, l) && lead.length === l.length)) {
    if (rest.length !== 0 || objects.length <= 1) return null;
    return { op: 'remove', index };
  }
  if (verb === 'enlarge' || verb === 'shrink') {
    const size: Size = verb === 'enlarge' ? 'large' : 'small';
    if (rest.length !== 0 || size === obj.size) return null;
    return { op: 'resize', index, size };
  }
  const pos = matchPosition(rest, 0);
  if (pos && pos.next === rest.length) {
    if (objects.some((o) => o.position === pos.value)) return null;
    return { op: 'move', index, position: pos.value };
  }
  if (rest[0] === 'to') rest = rest.slice(1);
  if (rest.length !== 1) return null;
  const w = rest[0]!;
  if (isColor(w)) {
    if (w === obj.color) return null;
    return { op: 'recolor', index, color: w };
  }
  const size: Size | null = isSize(w) ? w : ['bigger', 'larger', 'big'].includes(w) ? 'large' : w === 'smaller' ? 'small' : null;
  if (size) {
    if (size === obj.size) return null;
    return { op: 'resize', index, size };
  }
  return null;
}

/** The scene an edit instruction should produce (edited objects lose their jitter), or null (see parseEdit). */
export function applyEdit(scene: Scene, instruction: string): Scene | null {
  const e = parseEdit(scene, instruction);
  if (!e) return null;
  const objects = sortObjects(scene.objects).map((o) => ({ ...o }));
  const strip = (o: ShapeObject): ShapeObject => ({ shape: o.shape, color: o.color, size: o.size, position: o.position });
  switch (e.op) {
    case 'background': return { background: e.background!, objects };
    case 'add':
      return {
        background: scene.background,
        objects: sortObjects([...objects, { shape: e.shape!, color: e.color!, size: e.size!, position: e.position! }]),
      };
    case 'remove': return { background: scene.background, objects: objects.filter((_, i) => i !== e.index) };
    default: {
      const o = strip(objects[e.index!]!);
      if (e.op === 'recolor') o.color = e.color!;
      if (e.op === 'resize') o.size = e.size!;
      if (e.op === 'move') o.position = e.position!;
      objects[e.index!] = o;
      return { background: scene.background, objects: sortObjects(objects) };
    }
  }
}


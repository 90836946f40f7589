// Why "Describe the image." answers are wrong: each wrong answer (parsed with the shapes world's own
// parseDescription) against the scene it describes, sorted into the background, the number of objects, the cells
// they sit in, or — cells right — the attributes of some objects; and among those, whether a wrong object repeats
// another object of the same scene (the answer copies an earlier object's words instead of binding this one's).
// `npm run eval:describe-failures -- DIR` runs it on an evaluation kept with `npm run eval:model -- --out DIR`.
import { type Scene, parseDescription } from '../shapes/index.ts';

export interface DescribeFailure {
  kind: string;
  /** A wrong object is, word for word, another object of the scene. */
  repeats: boolean;
}

export const NOT_A_SCENE = 'not a scene (e.g. two objects in one cell)';

/** The kind of a description's failure against the scene it describes; null when the description is right. */
export function classifyDescribeFailure(answer: string, scene: Scene): DescribeFailure | null {
  const got = parseDescription(answer);
  if (!got) return { kind: NOT_A_SCENE, repeats: false };
  // cell → what sits there, so that a wrong object can be compared with the scene's objects elsewhere
  const byCell = (s: Scene) => new Map(s.objects.map((o) => [o.position, `${o.size} ${o.color} ${o.shape}`]));
  const gotCells = byCell(got);
  const wantCells = byCell(scene);
  if (gotCells.size !== wantCells.size) return { kind: 'wrong number of objects', repeats: false };
  if (![...wantCells.keys()].every((cell) => gotCells.has(cell))) return { kind: 'objects in wrong cells', repeats: false };
  const wrong = [...wantCells].filter(([cell, object]) => gotCells.get(cell) !== object);
  if (wrong.length === 0) return got.background === scene.background ? null : { kind: 'background only', repeats: false };
  const sceneObjects = new Set(wantCells.values());
  const repeats = wrong.some(([cell]) => sceneObjects.has(gotCells.get(cell) as string));
  return { kind: `cells right, ${wrong.length} object(s) wrong`, repeats };
}

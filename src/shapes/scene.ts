// Scenes of the shapes world, mirroring the JSON of training/shapes/scene.py:
//   {"background": "white", "objects": [{"shape": "circle", "color": "red", "size": "large",
//                                        "position": "top left", "dx": 1.25, "dy": -0.5}]}
// dx/dy (render jitter) are optional here and never part of a scene's meaning.
import {
  type Background, type Color, type Position, type Shape, type Size,
  MAX_OBJECTS, MIN_OBJECTS, POSITIONS, isBackground, isColor, isPosition, isShape, isSize,
} from './vocab.ts';

export interface ShapeObject {
  shape: Shape;
  color: Color;
  size: Size;
  position: Position;
  dx?: number;
  dy?: number;
}

export interface Scene {
  background: Background;
  objects: ShapeObject[];
}

export function cellIndex(position: Position): number {
  return POSITIONS.indexOf(position);
}

/** Objects in reading order of their cells (the canonical order). */
export function sortObjects<T extends { position: Position }>(objects: readonly T[]): T[] {
  return [...objects].sort((a, b) => cellIndex(a.position) - cellIndex(b.position));
}

export function objectKey(o: Pick<ShapeObject, 'shape' | 'color' | 'size' | 'position'>): string {
  return `${o.size} ${o.color} ${o.shape} @ ${o.position}`;
}

/** The scene's meaning as a string (jitter excluded): equal keys = same scene. */
export function sceneKey(scene: Scene): string {
  return `${scene.background}: ${sortObjects(scene.objects).map(objectKey).join('; ')}`;
}

export function sameScene(a: Scene, b: Scene): boolean {
  return sceneKey(a) === sceneKey(b);
}

/** Why the scene is not a valid shapes-world scene, or null when it is. */
export function sceneProblem(scene: Scene): string | null {
  if (!isBackground(scene.background)) return `unknown background ${JSON.stringify(scene.background)}`;
  const n = scene.objects.length;
  if (n < MIN_OBJECTS || n > MAX_OBJECTS) return `${n} objects (a scene holds ${MIN_OBJECTS}-${MAX_OBJECTS})`;
  const cells = new Set<string>();
  for (const o of scene.objects) {
    if (!isShape(o.shape)) return `unknown shape ${JSON.stringify(o.shape)}`;
    if (!isColor(o.color)) return `unknown color ${JSON.stringify(o.color)}`;
    if (!isSize(o.size)) return `unknown size ${JSON.stringify(o.size)}`;
    if (!isPosition(o.position)) return `unknown position ${JSON.stringify(o.position)}`;
    if (cells.has(o.position)) return `two objects ${o.position}`;
    cells.add(o.position);
  }
  return null;
}

/** Parses and validates a scene from its JSON (object or string); throws on an invalid scene. */
export function parseScene(json: unknown): Scene {
  const value: unknown = typeof json === 'string' ? JSON.parse(json) : json;
  if (typeof value !== 'object' || value === null) throw new Error('scene: not an object');
  const v = value as { background?: unknown; objects?: unknown };
  if (!Array.isArray(v.objects)) throw new Error('scene: objects is not an array');
  const scene = {
    background: v.background,
    objects: (v.objects as Record<string, unknown>[]).map((o) => {
      const obj: Record<string, unknown> = {
        shape: o['shape'], color: o['color'], size: o['size'], position: o['position'],
      };
      if (typeof o['dx'] === 'number') obj['dx'] = o['dx'];
      if (typeof o['dy'] === 'number') obj['dy'] = o['dy'];
      return obj;
    }),
  } as unknown as Scene;
  const problem = sceneProblem(scene);
  if (problem) throw new Error(`scene: ${problem}`);
  scene.objects = sortObjects(scene.objects);
  return scene;
}

// The shapes world's vocabulary: the ONE place on the TypeScript side that names shapes, colours, sizes,
// positions and backgrounds. Mirrors training/shapes/vocab.py (tests/shapes/vocab.test.ts compares the two through
// tests/fixtures/shapes/vocab.json, written by `training/py -m shapes.fixtures`).

export type RGB = readonly [number, number, number];

export const IMAGE_SIZE = 64;
export const GRID = 3;
export const MIN_OBJECTS = 1;
export const MAX_OBJECTS = 3;
/** Render jitter of an object's centre inside its cell, in pixels (quarter-pixel steps). */
export const JITTER = 2;

export const SHAPES = ['circle', 'square', 'triangle'] as const;
export type Shape = (typeof SHAPES)[number];
export const SHAPE_PLURALS: Readonly<Record<Shape, string>> = {
  circle: 'circles',
  square: 'squares',
  triangle: 'triangles',
};

export const COLORS = {
  red: [225, 25, 35],
  green: [40, 175, 40],
  blue: [40, 80, 240],
  yellow: [250, 230, 20],
  purple: [160, 40, 210],
  orange: [250, 130, 0],
  cyan: [30, 210, 230],
} as const satisfies Record<string, RGB>;
export type Color = keyof typeof COLORS;
export const COLOR_NAMES = Object.keys(COLORS) as Color[];

export const BACKGROUNDS = {
  white: [255, 255, 255],
  black: [0, 0, 0],
  gray: [128, 128, 128],
} as const satisfies Record<string, RGB>;
export type Background = keyof typeof BACKGROUNDS;
export const BACKGROUND_NAMES = Object.keys(BACKGROUNDS) as Background[];

/** Extent in pixels: circle diameter, square side, triangle base and height. */
export const SIZES = { small: 10, large: 16 } as const;
export type Size = keyof typeof SIZES;
export const SIZE_NAMES = Object.keys(SIZES) as Size[];

/** Cells in reading order: index = row * 3 + column. */
export const POSITIONS = [
  'top left', 'top', 'top right',
  'left', 'center', 'right',
  'bottom left', 'bottom', 'bottom right',
] as const;
export type Position = (typeof POSITIONS)[number];

/** The canonical phrase of a position inside a sentence. */
export const POSITION_PHRASES: Readonly<Record<Position, string>> = {
  'top left': 'at the top left',
  top: 'at the top',
  'top right': 'at the top right',
  left: 'on the left',
  center: 'in the center',
  right: 'on the right',
  'bottom left': 'at the bottom left',
  bottom: 'at the bottom',
  'bottom right': 'at the bottom right',
};

/** Every phrase a prompt, instruction or answer may use for a position (canonical first). */
export const POSITION_VARIANTS: Readonly<Record<Position, readonly string[]>> = {
  'top left': ['at the top left', 'in the top left', 'in the top left corner', 'at the upper left'],
  top: ['at the top', 'at the top center', 'in the top middle'],
  'top right': ['at the top right', 'in the top right', 'in the top right corner', 'at the upper right'],
  left: ['on the left', 'at the left', 'in the middle left'],
  center: ['in the center', 'in the middle', 'at the center'],
  right: ['on the right', 'at the right', 'in the middle right'],
  'bottom left': ['at the bottom left', 'in the bottom left', 'in the bottom left corner', 'at the lower left'],
  bottom: ['at the bottom', 'at the bottom center', 'in the bottom middle'],
  'bottom right': ['at the bottom right', 'in the bottom right', 'in the bottom right corner', 'at the lower right'],
};

export const NUMBER_WORDS: Readonly<Record<number, string>> = { 1: 'one', 2: 'two', 3: 'three' };

export function isShape(w: string): w is Shape {
  return (SHAPES as readonly string[]).includes(w);
}
export function isColor(w: string): w is Color {
  return Object.hasOwn(COLORS, w);
}
export function isBackground(w: string): w is Background {
  return Object.hasOwn(BACKGROUNDS, w);
}
export function isSize(w: string): w is Size {
  return Object.hasOwn(SIZES, w);
}
export function isPosition(w: string): w is Position {
  return (POSITIONS as readonly string[]).includes(w);
}

/** The vocabulary in the JSON form of training/shapes/vocab.py (as_json + positionVariants). */
export function vocabJson(): Record<string, unknown> {
  return {
    imageSize: IMAGE_SIZE,
    grid: GRID,
    minObjects: MIN_OBJECTS,
    maxObjects: MAX_OBJECTS,
    jitter: JITTER,
    shapes: [...SHAPES],
    shapePlurals: { ...SHAPE_PLURALS },
    colors: Object.fromEntries(Object.entries(COLORS).map(([k, v]) => [k, [...v]])),
    backgrounds: Object.fromEntries(Object.entries(BACKGROUNDS).map(([k, v]) => [k, [...v]])),
    sizes: { ...SIZES },
    positions: [...POSITIONS],
    positionPhrases: { ...POSITION_PHRASES },
    numberWords: Object.fromEntries(Object.entries(NUMBER_WORDS).map(([k, v]) => [String(k), v])),
    positionVariants: Object.fromEntries(Object.entries(POSITION_VARIANTS).map(([k, v]) => [k, [...v]])),
  };
}

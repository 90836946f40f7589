// The shapes world (TypeScript side): vocabulary, scenes, language, the automatic checker and the graders.
export * from './vocab.ts';
export * from './scene.ts';
export * from './language.ts';
export * from './checker.ts';
export * from './grade.ts';
export { decodeImage, detectImage, encodePng } from './image.ts';

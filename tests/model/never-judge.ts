/** A judge module for tests (TarModelOptions.judgeModule): its one judge passes nothing. */
export const judges = { never: () => false };

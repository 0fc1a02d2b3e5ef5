// types-for-adobe's ES3 library (noLib) leaves out a few utility types the TypeScript checker itself
// looks up; declare them here. Only the type checker reads this file.
type Extract<T, U> = T extends U ? T : never;
type Exclude<T, U> = T extends U ? never : T;

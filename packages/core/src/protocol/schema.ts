/**
 * A tiny schema language for parsed JSON: each schema is both a runtime check and, through
 * `Infer<typeof schema>`, the TypeScript type of what passes it. Types written from a schema can
 * therefore never promise a field the check did not look at.
 *
 * Deliberately small (what the chat.completion check needs). Objects are open: fields the schema
 * does not name are allowed and never looked at, so a check walks only the schema, whose depth is
 * fixed, never the data's own nesting. Object keys that can set or reach a prototype
 * (`__proto__`, `constructor`, `prototype`) are refused on every object a schema checks.
 */

/** Where a value failed and what was expected there. Built only on failure; never holds a value. */
export interface Mismatch {
  readonly path: ReadonlyArray<string | number>;
  readonly expected: string;
}

/** A check of a parsed JSON value; `T` is the type of what passes. */
export interface Schema<T> {
  /**
   * `undefined` when `value` is a `T`, else where and why not. May fill in fields (see {@link absentAs}).
   * `position` is the value's index when it is an element of an array.
   */
  readonly check: (value: unknown, position?: number) => Mismatch | undefined;
  /** Type-level only: never set at runtime. */
  readonly _type?: T;
}

/** A field that may be missing (a JSON key that is simply not there; JSON has no `undefined`). */
export interface OptionalSchema<T> extends Schema<T> {
  readonly optional: true;
}

/** A field that may be missing when `when(object)` holds, and is then set to `fill(position, object)`. */
export interface FilledSchema<T> extends Schema<T> {
  readonly absent: {
    /** `position`: the object's index when it is an element of an array. */
    readonly when: (object: Record<string, unknown>, position: number | undefined) => boolean;
    readonly fill: (position: number | undefined, object: Record<string, unknown>) => T;
  };
}

/** A field that may be missing or null, which says nothing: the check removes a null, so the type need not say `| null`. */
export interface NullDroppedSchema<T> extends OptionalSchema<T> {
  readonly nullIsAbsent: true;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

type Shape = Record<string, Schema<unknown>>;
type OptionalKeys<S extends Shape> = { [K in keyof S]: S[K] extends OptionalSchema<unknown> ? K : never }[keyof S];
type Flatten<T> = { [K in keyof T]: T[K] };
/** The object type of a shape: named fields, `?` for optional ones, and any other field as `unknown`. */
export type ObjectOf<S extends Shape> = Flatten<
  { [K in keyof S as K extends OptionalKeys<S> ? never : K]: Infer<S[K]> } & { [K in keyof S as K extends OptionalKeys<S> ? K : never]?: Infer<S[K]> } & { [key: string]: unknown }
>;

const miss = (expected: string): Mismatch => ({ path: [], expected });
const under = (key: string | number, m: Mismatch): Mismatch => ({ path: [key, ...m.path], expected: m.expected });
const hasOwn = (o: object, key: string): boolean => Object.prototype.hasOwnProperty.call(o, key);
/** Keys that would set a prototype if plaintext were ever copied with assignment, or lead to one in a merge. */
const PROTOTYPE_KEYS = ['__proto__', 'constructor', 'prototype'] as const;

function leaf<T>(expected: string, ok: (value: unknown) => boolean): Schema<T> {
  return { check: (value) => (ok(value) ? undefined : miss(expected)) };
}

export const str = (): Schema<string> => leaf('a string', (v) => typeof v === 'string');
/** A finite number (JSON.parse turns 1e400 into Infinity). */
export const num = (): Schema<number> => leaf('a finite number', (v) => typeof v === 'number' && Number.isFinite(v));
/** A non-negative safe integer: an index or a count. */
export const uint = (): Schema<number> => leaf('a non-negative integer', (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0);
export const literal = <const L extends string>(value: L): Schema<L> => leaf(JSON.stringify(value), (v) => v === value);
/** Anything at all: for fields that are named for documentation but not checked. */
export const unknownValue = (): Schema<unknown> => leaf('anything', () => true);

export function nullable<T>(inner: Schema<T>): Schema<T | null> {
  return { check: (value) => (value === null ? undefined : withExpected(inner.check(value), ' or null')) };
}

function withExpected(m: Mismatch | undefined, suffix: string): Mismatch | undefined {
  return m && m.path.length === 0 ? miss(m.expected + suffix) : m;
}

export function optional<T>(inner: Schema<T>): OptionalSchema<T> {
  return { check: inner.check, optional: true };
}

/** `inner`, missing, or null, which the check then removes (see {@link NullDroppedSchema}). */
export function optionalNullDropped<T>(inner: Schema<T>): NullDroppedSchema<T> {
  return { check: inner.check, optional: true, nullIsAbsent: true };
}

/** `inner`, or missing when `when(object)` holds; the check then sets the field to `fill`, so the type need not say `?`. */
export function absentAs<T>(inner: Schema<T>, fill: T, when: (object: Record<string, unknown>) => boolean = () => true): FilledSchema<T> {
  return { check: inner.check, absent: { when, fill: () => fill } };
}

/**
 * `inner`, or missing when `when(object)` holds; the check then sets the field to what `make` makes
 * of the (checked) object: a fresh value each time.
 */
export function absentFrom<T>(inner: Schema<T>, make: (object: Record<string, unknown>) => NoInfer<T>, when: (object: Record<string, unknown>) => boolean = () => true): FilledSchema<T> {
  return { check: inner.check, absent: { when, fill: (_position, object) => make(object) } };
}

/**
 * A non-negative integer index, or missing in an element of an array: the check then sets it to the
 * element's position in that array (what a `choices[i].index` is when a server leaves it out).
 */
export function indexOrPosition(): FilledSchema<number> {
  return { check: uint().check, absent: { when: (_object, position) => position !== undefined, fill: (position) => position as number } };
}

export function array<T>(item: Schema<T>, options: { minItems?: number } = {}): Schema<T[]> {
  const min = options.minItems ?? 0;
  const expected = min > 0 ? `an array of at least ${min}` : 'an array';
  return {
    check(value) {
      if (!Array.isArray(value) || value.length < min) return miss(expected);
      for (let i = 0; i < value.length; i++) {
        const m = item.check(value[i], i);
        if (m) return under(i, m);
      }
      return undefined;
    },
  };
}

/** One of several object schemas, chosen by the value's string `type` field (each schema's own `literal`). */
export function byType<M extends Record<string, Schema<unknown>>>(schemas: M): Schema<Infer<M[keyof M]>> {
  const expected = Object.keys(schemas).map((name) => JSON.stringify(name)).join(' or ');
  return {
    check(value, position) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return miss('an object');
      const type = (value as Record<string, unknown>).type;
      const schema = typeof type === 'string' && hasOwn(schemas, type) ? schemas[type] : undefined;
      return schema ? schema.check(value, position) : under('type', miss(expected));
    },
  };
}

/** An open object with the fields of `shape`; other fields are allowed and not looked at. */
export function object<S extends Shape>(shape: S): Schema<ObjectOf<S>> {
  const fields = Object.entries(shape);
  return {
    check(value, position) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return miss('an object');
      const o = value as Record<string, unknown>;
      for (const key of PROTOTYPE_KEYS) if (hasOwn(o, key)) return under(key, miss('absent'));
      let filled: Array<[string, FilledSchema<unknown>['absent']]> | undefined;
      for (const [key, schema] of fields) {
        if (hasOwn(o, key) && o[key] === null && (schema as Partial<NullDroppedSchema<unknown>>).nullIsAbsent) delete o[key];
        if (!hasOwn(o, key)) {
          const absent = (schema as Partial<FilledSchema<unknown>>).absent;
          if (absent) (filled ??= []).push([key, absent]);
          else if (!(schema as Partial<OptionalSchema<unknown>>).optional) return under(key, miss('present'));
          continue;
        }
        const m = schema.check(o[key]);
        if (m) return under(key, m);
      }
      // After every present field passed, so `when` sees checked siblings.
      for (const [key, { when, fill }] of filled ?? []) {
        if (!when(o, position)) return under(key, miss('present'));
        // A data property, like JSON.parse makes: no setter on the prototype chain is ever invoked.
        Object.defineProperty(o, key, { value: fill(position, o), writable: true, enumerable: true, configurable: true });
      }
      return undefined;
    },
  };
}

/** "choices[0].message.role" */
export function formatPath(path: ReadonlyArray<string | number>): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

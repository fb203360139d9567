/**
 * Validate a constructor's options once, with valibot, turning the first failure into a
 * `TypeError` (wrong type, unknown option) or a `RangeError` (value out of range) that names the
 * option, so that a bad setting fails at startup and never misbehaves later.
 *
 * @example
 * ```ts
 * const options = parseOptions(v.strictObject({ path: v.string() }), { path: 1 }, 'LmdbStorage.open');
 * // TypeError: Invalid option path for LmdbStorage.open: Invalid type: Expected string but received 1
 * ```
 * @module
 */
import * as v from 'valibot';

/** Parse `input` with `schema`; throw a `TypeError` or `RangeError` naming the option. */
export function parseOptions<S extends v.GenericSchema>(
  schema: S,
  input: unknown,
  where: string,
): v.InferOutput<S> {
  const result = v.safeParse(schema, input, { abortEarly: true });
  if (result.success) return result.output;
  const issue = result.issues[0];
  const name = issue.path?.map((item) => String(item.key)).join('.') ?? '(options)';
  const message = `Invalid option ${name} for ${where}: ${issue.message}`;
  // A type or unknown-key issue is a TypeError; a value outside its bounds is a RangeError.
  throw issue.kind === 'validation' ? new RangeError(message) : new TypeError(message);
}

/** The schema of a safe integer in `[min, max]`: what `intInRange` returns. */
export type IntSchema = v.SchemaWithPipe<
  readonly [
    v.NumberSchema<undefined>,
    v.SafeIntegerAction<number, undefined>,
    v.MinValueAction<number, number, undefined>,
    v.MaxValueAction<number, number, undefined>,
  ]
>;
/** An optional integer option whose default is filled in. */
export type IntOption = v.OptionalSchema<IntSchema, number>;
/** An optional boolean option whose default is filled in. */
export type BooleanOption = v.OptionalSchema<v.BooleanSchema<undefined>, boolean>;

/** A safe integer in `[min, max]`, for an option's schema. */
export function intInRange(min: number, max: number): IntSchema {
  return v.pipe(v.number(), v.safeInteger(), v.minValue(min), v.maxValue(max));
}

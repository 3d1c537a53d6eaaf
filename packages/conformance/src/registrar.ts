import type { Factory, SuiteOptions, TestFunction } from "./runner.js";

/** Per-case settings; the defaults suit a case that needs no waiting. */
export interface CaseSettings<TOptions> {
  /** What the factory is called with; the suite's default when omitted. */
  factoryOptions?: TOptions;
  /** Passed to the runner, for cases that wait out TTLs. */
  timeoutMs?: number;
}

/**
 * Registers a suite's cases with the caller's runner, giving each case fresh
 * instances from the factory and tearing them down afterwards, pass or fail.
 */
export interface CaseRegistrar<T, TOptions> {
  /** A case that needs one instance. */
  withInstance(name: string, body: (instance: T) => Promise<void>, settings?: CaseSettings<TOptions>): void;
  /**
   * A case that needs two handles, as two engine nodes would hold; meaningful
   * only when the factory hands out handles on one shared backend.
   */
  withTwoHandles(name: string, body: (first: T, second: T) => Promise<void>, settings?: CaseSettings<TOptions>): void;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * Builds the registrar a suite's files share, so that every case gets the
 * same name prefix, factory options and teardown guarantees.
 */
export function caseRegistrar<T, TOptions>(
  test: TestFunction,
  factory: Factory<T, TOptions>,
  suiteOptions: SuiteOptions<T>,
  defaults: { prefix: string; factoryOptions: TOptions },
): CaseRegistrar<T, TOptions> {
  const prefix = suiteOptions.prefix ?? defaults.prefix;

  const register = (
    name: string,
    count: number,
    body: (instances: T[]) => Promise<void>,
    settings: CaseSettings<TOptions> = {},
  ) => {
    const factoryOptions = settings.factoryOptions ?? defaults.factoryOptions;
    test(
      `${prefix}: ${name}`,
      () => runWithInstances(factory, factoryOptions, count, suiteOptions.teardown, body),
      settings.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    );
  };

  return {
    withInstance: (name, body, settings) => register(name, 1, ([instance]) => body(instance!), settings),
    withTwoHandles: (name, body, settings) =>
      register(name, 2, ([first, second]) => body(first!, second!), settings),
  };
}

async function runWithInstances<T, TOptions>(
  factory: Factory<T, TOptions>,
  factoryOptions: TOptions,
  count: number,
  teardown: SuiteOptions<T>["teardown"],
  body: (instances: T[]) => Promise<void>,
): Promise<void> {
  const instances: T[] = [];
  let failure: { error: unknown } | undefined;
  try {
    for (let index = 0; index < count; index += 1) instances.push(await factory(factoryOptions));
    await body(instances);
  } catch (error) {
    failure = { error };
  }
  // A factory may hand out the same object twice (one in-process backend);
  // it is torn down once. Every instance is torn down even if one teardown throws.
  for (const instance of new Set(instances)) {
    try {
      await teardown?.(instance);
    } catch (error) {
      failure ??= { error };
    }
  }
  if (failure) throw failure.error;
}

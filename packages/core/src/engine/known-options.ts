import type { JwtAuthOptions, JwtClaimNames } from "../auth/jwt.js";
import { assertImplements } from "../kernel/contract.js";
import { DOCUMENT_STORE_METHODS } from "../documents/store.js";
import { INBOX_STORE_METHODS } from "../inbox/store.js";
import { PRESENCE_STORE_METHODS } from "../presence/store.js";
import { REVOCATION_STORE_METHODS } from "../revocations/store.js";
import { STREAM_STORE_METHODS } from "../streams/store.js";
import type { MetricsOptions } from "../kernel/metrics.js";
import type { AuthExpiryOptions, LimitOptions, RealtimeEngineOptions, RecoveryOptions, RevocationTimingOptions } from "./options.js";
import type { PresenceTimingOptions } from "../presence/service.js";
import type { ScopedPresenceLimits } from "../scoped-presence/service.js";
import { SCOPED_PRESENCE_STORE_METHODS } from "../scoped-presence/store.js";
import type { TopicOptions } from "../topics/patterns.js";
import type { UndeliveredOptions } from "../undelivered/options.js";

/**
 * Every key of an options interface, once. TypeScript checks the record is
 * complete and exact, so an option added to an interface fails the
 * type-check until its key is added here, and a typo here cannot pass.
 */
type KeysOf<T> = { readonly [K in keyof Required<T>]: true };

/**
 * The options `createRealtimeEngine` knows, by group: one place, checked
 * against the interfaces. Adding an option to an interface means adding its
 * key to the group here (the type-check says so).
 */
const KNOWN: Record<string, object> = {
  "": {
    auth: true,
    authorize: true,
    topics: true,
    presence: true,
    scopedPresence: true,
    scopedPresenceLimits: true,
    inbox: true,
    undelivered: true,
    documents: true,
    streams: true,
    revocations: true,
    revocationTiming: true,
    recovery: true,
    resolver: true,
    adapter: true,
    limits: true,
    presenceTiming: true,
    authExpiry: true,
    events: true,
    namespace: true,
    socketIo: true,
    logger: true,
    nodeId: true,
    metrics: true,
  } satisfies KeysOf<RealtimeEngineOptions>,
  limits: {
    allowedOrigins: true,
    maxPayloadBytes: true,
    eventsPerSecond: true,
    userEventsPerSecond: true,
    userBytesPerSecond: true,
    maxDepth: true,
    maxDocumentBytes: true,
    maxMessageBytes: true,
    maxBufferedBytes: true,
    maxDevicesPerUser: true,
    maxSocketsPerDevice: true,
    maxSubscriptionsPerConnection: true,
    authorizeTimeoutMs: true,
    storeTimeoutMs: true,
    authenticateTimeoutMs: true,
    handlerTimeoutMs: true,
  } satisfies KeysOf<LimitOptions>,
  topics: { patterns: true } satisfies KeysOf<TopicOptions>,
  recovery: { maxReplay: true, size: true, ttlMs: true, idleMs: true } satisfies KeysOf<RecoveryOptions>,
  presenceTiming: { ttlMs: true, heartbeatIntervalMs: true, sweepIntervalMs: true } satisfies KeysOf<PresenceTimingOptions>,
  scopedPresenceLimits: { maxStateBytes: true, maxStateDepth: true, maxScopesPerConnection: true, maxMembersListed: true, updatesPerSecond: true, batchWindowMs: true, maxBatchBytes: true } satisfies KeysOf<ScopedPresenceLimits>,
  authExpiry: { warnBeforeMs: true, requireExpiry: true } satisfies KeysOf<AuthExpiryOptions>,
  revocationTiming: { ttlMs: true, pollIntervalMs: true } satisfies KeysOf<RevocationTimingOptions>,
  undelivered: {
    afterMs: true,
    handler: true,
    events: true,
    leaseMs: true,
    timeoutMs: true,
    maxAttempts: true,
    backoffMs: true,
    pollIntervalMs: true,
    concurrency: true,
  } satisfies KeysOf<UndeliveredOptions>,
  metrics: { registry: true, companyLabel: true } satisfies KeysOf<MetricsOptions>,
  "metrics.companyLabel": { max: true } satisfies KeysOf<NonNullable<MetricsOptions["companyLabel"]>>,
  // Checked only when `auth` is jwtAuth options rather than an Authenticator.
  auth: { secret: true, publicKey: true, algorithms: true, issuer: true, audience: true, clockToleranceSec: true, claims: true } satisfies KeysOf<JwtAuthOptions>,
  "auth.claims": { userId: true, companyId: true, roles: true, deviceId: true } satisfies KeysOf<JwtClaimNames>,
};

/** The option groups under the top level, as KNOWN lists them: every one is checked. */
const TOP_LEVEL_GROUPS = Object.keys(KNOWN).filter((group) => group !== "" && group !== "auth" && !group.includes("."));

/**
 * Options renamed in 0.x, by their former path. A former name is refused as
 * any unknown option is, and pointed to its new name, which no edit distance
 * would find.
 */
const RENAMED: Readonly<Record<string, string>> = {
  history: "recovery",
  "limits.maxUserMessageBytes": "limits.maxMessageBytes",
  "topics.maxPerConnection": "limits.maxSubscriptionsPerConnection",
};

/** The stores an application may pass, with the methods each must have. */
const STORES: ReadonlyArray<[option: keyof RealtimeEngineOptions, contract: string, methods: readonly string[]]> = [
  ["presence", "PresenceStore", PRESENCE_STORE_METHODS],
  ["scopedPresence", "ScopedPresenceStore", SCOPED_PRESENCE_STORE_METHODS],
  ["inbox", "InboxStore", INBOX_STORE_METHODS],
  ["documents", "DocumentStore", DOCUMENT_STORE_METHODS],
  ["streams", "StreamStore", STREAM_STORE_METHODS],
  ["revocations", "RevocationStore", REVOCATION_STORE_METHODS],
];

/**
 * Refuses, at `createRealtimeEngine`, what would otherwise be ignored or fail
 * at first use: an option or a nested option the engine does not know (a
 * typo such as `maxPayloadByte`, or `maxPayloadBytes` outside `limits`), a
 * group that is not an object, and a store, resolver, authenticator or
 * logger without its methods.
 *
 * @throws TypeError naming every unknown option, with the known one it is
 * closest to when there is one, or the store and its missing methods.
 */
export function assertKnownOptions(options: object): void {
  const unknown: Array<{ group: string; path: string; closest: string | undefined }> = [];
  const check = (group: string, value: unknown) => {
    if (value === undefined) return;
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new TypeError(`createRealtimeEngine: \`${group}\` must be an object; got ${Array.isArray(value) ? "an array" : value === null ? "null" : typeof value}.`);
    }
    const known = KNOWN[group]!;
    for (const key of Object.keys(value)) {
      if (!Object.hasOwn(known, key)) unknown.push({ group, path: group === "" ? key : `${group}.${key}`, closest: closestOption(group, key) });
    }
  };
  const all = options as Record<string, unknown>;
  check("", all);
  // Every top-level group KNOWN lists; `auth` is checked below, only when it holds jwtAuth options.
  for (const group of TOP_LEVEL_GROUPS) check(group, all[group]);
  check("metrics.companyLabel", (all.metrics as { companyLabel?: unknown } | undefined)?.companyLabel);
  const auth = all.auth as { authenticate?: unknown; claims?: unknown } | undefined;
  const jwtOptions = typeof auth === "object" && auth !== null && !("authenticate" in auth);
  if (jwtOptions) {
    check("auth", auth);
    if (typeof auth.claims === "object") check("auth.claims", auth.claims);
  }
  if (unknown.length > 0) {
    const named = unknown.map(({ path, closest }) => (closest ? `\`${path}\` (did you mean \`${closest}\`?)` : `\`${path}\``));
    const unguessed = [...new Set(unknown.filter((entry) => !entry.closest).map((entry) => entry.group))];
    const known = unguessed.map((group) => ` Known ${group === "" ? "options" : `\`${group}\` options`}: ${Object.keys(KNOWN[group]!).join(", ")}.`);
    throw new TypeError(`createRealtimeEngine: unknown option${unknown.length > 1 ? "s" : ""} ${named.join(", ")}.${known.join("")}`);
  }

  for (const [option, contract, methods] of STORES) {
    if (all[option] !== undefined) assertImplements(`createRealtimeEngine: the ${option} store (\`${option}\`)`, contract, all[option], methods);
  }
  if (all.resolver !== undefined) assertImplements("createRealtimeEngine: `resolver`", "ConflictResolver", all.resolver, ["resolve"]);
  if (auth !== undefined && !jwtOptions) assertImplements("createRealtimeEngine: `auth`", "Authenticator", auth, ["authenticate"]);
  if (all.logger !== undefined && all.logger !== false) assertImplements("createRealtimeEngine: `logger`", "Logger", all.logger, ["warn", "error"]);
}

/**
 * The known option an unknown key most likely meant: the new name of a
 * renamed option, the closest key of the same group by edit distance
 * (ignoring case), or the same key in another group (`maxPayloadBytes`
 * given at the top level means `limits.maxPayloadBytes`). `undefined` when
 * nothing is close.
 */
function closestOption(group: string, key: string): string | undefined {
  const renamed = RENAMED[group === "" ? key : `${group}.${key}`];
  if (renamed !== undefined) return renamed;
  const wanted = key.toLowerCase();
  let best: { path: string; distance: number } | undefined;
  for (const [candidateGroup, keys] of Object.entries(KNOWN)) {
    for (const known of Object.keys(keys)) {
      const distance = editDistance(wanted, known.toLowerCase());
      // Another group only for the key itself: a near miss there is more likely a coincidence than a misplaced option.
      const close = candidateGroup === group ? distance <= Math.max(2, Math.floor(known.length / 4)) : distance === 0;
      if (close && (!best || distance < best.distance)) best = { path: candidateGroup === "" ? known : `${candidateGroup}.${known}`, distance };
    }
  }
  return best?.path;
}

/** Levenshtein distance: insertions, deletions and substitutions. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

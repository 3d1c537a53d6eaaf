import { inboxUndeliveredSuite } from "@truss/conformance";
import { memoryInboxStore, type InboxOptions, type InboxStore } from "@truss/core";
import { test } from "vitest";

inboxUndeliveredSuite(test, (options) => memoryInboxStore(options), { prefix: "memoryInboxStore" });

/** One store per distinct set of options, handed to every caller: two engine nodes on one backend, in process. */
const shared = new Map<string, InboxStore>();
inboxUndeliveredSuite(
  test,
  (options: InboxOptions) => {
    const key = JSON.stringify(options);
    if (!shared.has(key)) shared.set(key, memoryInboxStore(options));
    return shared.get(key)!;
  },
  { prefix: "memoryInboxStore, shared", sharedBackend: true },
);

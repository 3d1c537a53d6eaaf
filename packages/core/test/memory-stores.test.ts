import { documentStoreSuite, inboxSuite, presenceStoreSuite } from "@truss/conformance";
import { memoryDocumentStore, memoryInboxStore, memoryPresenceStore } from "@truss/core";
import { test } from "vitest";

presenceStoreSuite(test, () => memoryPresenceStore(), { prefix: "memoryPresenceStore" });
inboxSuite(test, (options) => memoryInboxStore(options), { prefix: "memoryInboxStore" });
documentStoreSuite(test, (options) => memoryDocumentStore(options), { prefix: "memoryDocumentStore" });

/**
 * One instance per distinct set of factory options, handed out to every
 * caller: the in-process stand-in for two engine nodes on one Redis, so the
 * suites' shared-backend races run against the memory stores as well.
 */
function sharedInstances<TOptions, T>(create: (options: TOptions) => T): (options: TOptions) => T {
  const instances = new Map<string, T>();
  return (options) => {
    const key = JSON.stringify(options ?? null);
    let instance = instances.get(key);
    if (instance === undefined) {
      instance = create(options);
      instances.set(key, instance);
    }
    return instance;
  };
}

presenceStoreSuite(test, sharedInstances(() => memoryPresenceStore()), {
  prefix: "memoryPresenceStore, shared",
  sharedBackend: true,
});
inboxSuite(test, sharedInstances((options) => memoryInboxStore(options)), {
  prefix: "memoryInboxStore, shared",
  sharedBackend: true,
});
documentStoreSuite(test, sharedInstances((options) => memoryDocumentStore(options)), {
  prefix: "memoryDocumentStore, shared",
  sharedBackend: true,
});

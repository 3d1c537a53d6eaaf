import { createContext, createElement, useContext, useEffect, useState, type ReactNode } from "react";
import { connect, type ConnectOptions, type TrussClient } from "@truss/client";
import type { RegisteredEvents } from "./register.js";

/** What {@link TrussProvider} takes: a client you made, or where and how to make one. */
export type TrussProviderProps = {
  /** The part of the app that uses the hooks. */
  children?: ReactNode;
} & (
  | {
      /** A client made with `connect()`: the provider hands it to the hooks and never closes it. */
      client: TrussClient<any>;
      url?: undefined;
      options?: undefined;
    }
  | {
      client?: undefined;
      /** The Truss server's URL: the provider connects in the browser, after its first render, and closes the client when it unmounts or the URL changes. */
      url: string;
      /** `connect()`'s options, read when the client is made; give the provider a new `key` to connect with other ones. */
      options: ConnectOptions;
    }
);

/** What a provider without a `key` of the signed-in user is told when its client stopped for another user's token. */
const ANOTHER_USER =
  "[truss] The user signed in changed under this TrussProvider, so its client stopped (AUTH_PRINCIPAL_MISMATCH) rather than carry the first user's data and writes into the next user's session. Give the provider a key of the user and company, e.g. key={`${companyId}:${userId}`}, so each user gets a client of their own.";

/** `undefined` outside a provider; `null` while the provider's own client is not made yet (on the server, and in the first render). */
const TrussContext = createContext<TrussClient<RegisteredEvents> | null | undefined>(undefined);

/**
 * Makes a Truss client available to the hooks below it. Given `url` and
 * `options`, it connects in an effect, so a server-side render opens no
 * socket, and closes what it made when it unmounts; given a `client`, it
 * leaves its lifecycle to you. A client serves one user: key the provider by
 * the signed-in user and company, so a sign-out and sign-in starts a new
 * client (one kept across it stops with `AUTH_PRINCIPAL_MISMATCH`, and every
 * hook below shows that error).
 *
 * @example
 * ```tsx
 * <TrussProvider key={`${companyId}:${userId}`} url="https://erp.example.com" options={{ getToken, deviceId }}>
 *   <SiteReport id="r-1" />
 * </TrussProvider>
 * ```
 */
export function TrussProvider(props: TrussProviderProps): ReactNode {
  const [created, setCreated] = useState<TrussClient<RegisteredEvents> | null>(null);
  const { client: given, url, options } = props;
  useEffect(() => {
    if (given || url === undefined || !options) return;
    // The options of the render that mounted the provider or changed its URL; later ones are not read (see `options`).
    const client = connect<RegisteredEvents>(url, options);
    client.onStatus((_status, { reason }) => {
      if (reason?.code === "AUTH_PRINCIPAL_MISMATCH") console.warn(ANOTHER_USER);
    });
    setCreated(client);
    return () => {
      client.close();
      setCreated((current) => (current === client ? null : current));
    };
  }, [given, url]);
  return createElement(TrussContext.Provider, { value: given ?? created }, props.children);
}

/**
 * The client of the nearest {@link TrussProvider}: `null` during a
 * server-side render and the first browser render of a provider that makes
 * its own client.
 *
 * @throws TypeError outside a `TrussProvider`.
 */
export function useTrussClient(): TrussClient<RegisteredEvents> | null {
  const client = useContext(TrussContext);
  if (client === undefined) throw new TypeError("Truss hooks need a <TrussProvider> above them (with a `client`, or a `url` and `options`).");
  return client;
}

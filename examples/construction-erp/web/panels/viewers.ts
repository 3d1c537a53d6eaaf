import type { PresenceScope, ScopePresence, ScopedPresenceMember } from "@truss/client";
import type { DashboardContext } from "../context.js";
import { h, toast } from "../dom.js";

/** The state a dashboard joins a scope's presence with: the field it edits, if any. */
export interface ViewerState {
  field: string | null;
}

/** The field a member is editing, from its presence state; `null` when it only has the scope open. */
export function fieldOf(member: ScopedPresenceMember): string | null {
  const field = (member.state as Partial<ViewerState> | null)?.field;
  return typeof field === "string" ? field : null;
}

/** This tab's presence in one scope at a time (the open report, the open project), and the others there. */
export interface Viewers {
  /** Joins `scope`'s presence (the scope must be held already: subscribed or watched), leaving the previous one's. */
  enter(scope: PresenceScope, state: ViewerState): void;
  /** Replaces this tab's state in the scope it is in; coalesced by the client, so fine on every focus change. */
  update(state: ViewerState): void;
  /** Leaves the scope it is in, if any. */
  leave(): void;
}

/**
 * Shows who else has a scope open in `list`, one `li[data-user-id]` per
 * connection (another tab of this user included), with the field each is
 * editing in `data-field`, from the engine's scoped presence
 * (`client.presence.in(scope)`). The client joins again after a
 * reconnection; while offline the list says so rather than show who was
 * there. `onChange` runs after each change, with the others.
 */
export function trackViewers({ client, session, directory }: DashboardContext, list: HTMLElement, onChange: (others: ScopedPresenceMember[]) => void = () => undefined): Viewers {
  let current: ScopePresence | undefined;
  let unsubscribe: (() => void) | undefined;

  const render = () => {
    const others = current?.others ?? [];
    if (!current) list.replaceChildren();
    else if (client.status !== "connected") list.replaceChildren(h("li", { class: "empty" }, "Offline: who else is here shows again once connected."));
    else if (others.length === 0) list.replaceChildren(h("li", { class: "empty" }, "Nobody else has this open."));
    else {
      list.replaceChildren(
        ...others.map((member) => {
          const field = fieldOf(member);
          const name = member.userId === session.user.id ? "You, in another tab" : directory.nameOf(member.userId);
          return h("li", { "data-user-id": member.userId, "data-field": field ?? "" }, h("strong", {}, name), field ? ` · editing ${field}` : " · viewing");
        }),
      );
    }
    onChange(current && client.status === "connected" ? others : []);
  };

  client.onStatus(render);
  directory.onChange(render);

  const leave = () => {
    const previous = current;
    unsubscribe?.();
    unsubscribe = undefined;
    current = undefined;
    render();
    void previous?.leave().catch(() => undefined);
  };

  const enter = (scope: PresenceScope, state: ViewerState) => {
    const presence = client.presence.in(scope);
    if (current === presence && presence.joined) return presence.update(state);
    leave();
    current = presence;
    unsubscribe = presence.subscribe(render);
    render();
    presence.join(state).catch((error: Error) => {
      if (current === presence) toast(`Could not show who else is here: ${error.message}`);
    });
  };

  return { enter, leave, update: (state) => current?.update(state) };
}

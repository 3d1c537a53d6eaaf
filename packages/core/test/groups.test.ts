import { expect, test } from "vitest";
import { Groups } from "../src/kernel/groups.js";

test("a group holds its members whether it has one or many, and disappears when empty", () => {
  const groups = new Groups<string, string>();
  groups.add("acme/ann", "phone");
  groups.add("acme/ann", "phone");
  expect([...groups.of("acme/ann")]).toEqual(["phone"]);
  groups.add("acme/ann", "laptop");
  groups.add("acme/bob", "tablet");
  expect(groups.sizeOf("acme/ann")).toBe(2);
  expect(groups.has("acme/ann", "laptop") && !groups.has("acme/bob", "laptop")).toBe(true);
  expect([...groups.all()].sort()).toEqual(["laptop", "phone", "tablet"]);
  groups.delete("acme/ann", "phone");
  expect([...groups.of("acme/ann")]).toEqual(["laptop"]);
  groups.delete("acme/ann", "someone-else");
  expect(groups.sizeOf("acme/ann")).toBe(1);
  groups.delete("acme/ann", "laptop");
  expect(groups.sizeOf("acme/ann")).toBe(0);
  expect([...groups.of("acme/ann")]).toEqual([]);
  expect([...groups.all()]).toEqual(["tablet"]);
});

test("forEach visits the same members as of(), for a group of one, of many, and none", () => {
  const groups = new Groups<string, string>();
  const visited = (key: string) => {
    const members: string[] = [];
    groups.forEach(key, (member) => members.push(member));
    return members;
  };
  groups.add("acme/ann", "phone");
  expect(visited("acme/ann")).toEqual(["phone"]);
  groups.add("acme/ann", "laptop");
  expect(visited("acme/ann")).toEqual([...groups.of("acme/ann")]);
  expect(visited("acme/ann").sort()).toEqual(["laptop", "phone"]);
  expect(visited("acme/nobody")).toEqual([]);
});

test("forEachMember visits every member of every group once, as all() lists them", () => {
  const groups = new Groups<string, string>();
  const visited = () => {
    const members: string[] = [];
    groups.forEachMember((member) => members.push(member));
    return members;
  };
  expect(visited()).toEqual([]);
  groups.add("acme/ann", "phone");
  groups.add("acme/ann", "laptop");
  groups.add("acme/bob", "tablet");
  expect(visited().sort()).toEqual(["laptop", "phone", "tablet"]);
  expect(visited()).toEqual([...groups.all()]);
  groups.delete("acme/ann", "phone");
  expect(visited().sort()).toEqual(["laptop", "tablet"]);
});

/**
 * The demo's starting data: two companies that must never see each other's
 * rows, with a few users (a subcontractor each, assigned to one project),
 * projects, expenses, invoices, stock items and site reports. Plain data with no database import, so the
 * Express and NestJS examples can start from the same world.
 *
 * @module
 */
import type { Expense, InventoryItem, Invoice, Project, Task } from "./catalog.js";

/** The password of every demo login. Printed at start; never reuse it anywhere real. */
export const DEMO_PASSWORD = "truss-demo";

/** A tenant. */
export interface SeedCompany {
  id: string;
  name: string;
}

/**
 * A role decides what a user may do; `src/policy.ts` holds the full table.
 * Managers run the company, members do its daily work, and subcontractors
 * see only the projects they are assigned to.
 */
export type Role = "manager" | "member" | "subcontractor";

/** A user who can log in. */
export interface SeedUser {
  id: string;
  companyId: string;
  name: string;
  email: string;
  /** In plain text because it is public demo data; databases store only its hash. */
  password: string;
  role: Role;
  title: string;
}

/** A site report or other shared document, edited live in the dashboard. */
export interface SeedDocument {
  companyId: string;
  type: string;
  id: string;
  /** The project it belongs to; `null` for a company-wide document, which subcontractors never see. */
  projectId: string | null;
  data: Record<string, unknown>;
}

/** A user assigned to a project. For a subcontractor the assignments are all they can see. */
export interface SeedAssignment {
  companyId: string;
  projectId: string;
  userId: string;
}

/** Everything the demo starts with, each row tagged with its company. */
export interface SeedData {
  companies: SeedCompany[];
  users: SeedUser[];
  projects: Array<Project & { companyId: string }>;
  tasks: Array<Task & { companyId: string }>;
  expenses: Array<Expense & { companyId: string }>;
  invoices: Array<Invoice & { companyId: string }>;
  inventory: Array<InventoryItem & { companyId: string }>;
  documents: SeedDocument[];
  assignments: SeedAssignment[];
}

/** The type of the site reports the document editor opens. */
export const SITE_REPORT = "site-report";

/**
 * Builds the seed with every timestamp set to `now`, so a fresh database
 * looks recently touched.
 */
export function seedData(now: number = Date.now()): SeedData {
  const day = 24 * 60 * 60 * 1000;
  return {
    companies: [
      { id: "northwind", name: "Northwind Construction" },
      { id: "globex", name: "Globex Builders" },
    ],
    users: [
      { id: "u-alice", companyId: "northwind", name: "Alice Moreno", email: "alice@northwind.test", password: DEMO_PASSWORD, role: "manager", title: "Project manager" },
      { id: "u-ben", companyId: "northwind", name: "Ben Okafor", email: "ben@northwind.test", password: DEMO_PASSWORD, role: "member", title: "Site foreman" },
      { id: "u-chloe", companyId: "northwind", name: "Chloe Park", email: "chloe@northwind.test", password: DEMO_PASSWORD, role: "member", title: "Site engineer" },
      { id: "u-sam", companyId: "northwind", name: "Sam Reyes", email: "sam@northwind.test", password: DEMO_PASSWORD, role: "subcontractor", title: "Reyes Concrete, formwork" },
      { id: "u-gus", companyId: "globex", name: "Gus Lindqvist", email: "gus@globex.test", password: DEMO_PASSWORD, role: "manager", title: "Operations director" },
      { id: "u-hana", companyId: "globex", name: "Hana Sato", email: "hana@globex.test", password: DEMO_PASSWORD, role: "member", title: "Buyer" },
      { id: "u-ines", companyId: "globex", name: "Ines Duarte", email: "ines@globex.test", password: DEMO_PASSWORD, role: "subcontractor", title: "Duarte Electrical" },
    ],
    projects: [
      { companyId: "northwind", id: "p-riverside", name: "Riverside Tower", site: "14 Quay Road", status: "active", budget: 4_200_000, spent: 1_830_000, updatedAt: now },
      { companyId: "northwind", id: "p-harbor", name: "Harbor Bridge Retrofit", site: "Pier 9", status: "active", budget: 2_750_000, spent: 2_410_000, updatedAt: now },
      { companyId: "northwind", id: "p-elm", name: "Elm Street School", site: "220 Elm Street", status: "planned", budget: 1_100_000, spent: 0, updatedAt: now },
      { companyId: "globex", id: "p-annex", name: "Globex HQ Annex", site: "1 Globex Plaza", status: "active", budget: 3_000_000, spent: 900_000, updatedAt: now },
      { companyId: "globex", id: "p-hangar", name: "Airport Hangar 3", site: "North apron", status: "planned", budget: 5_500_000, spent: 0, updatedAt: now },
    ],
    tasks: [
      { companyId: "northwind", id: "t-slab", projectId: "p-riverside", title: "Pour level 12 slab", status: "in_progress", assigneeId: "u-ben", dueDate: isoDate(now + 2 * day), updatedAt: now },
      { companyId: "northwind", id: "t-scaffold", projectId: "p-harbor", title: "Inspect scaffolding on span 3", status: "open", assigneeId: null, dueDate: isoDate(now + day), updatedAt: now },
      { companyId: "globex", id: "t-steel", projectId: "p-annex", title: "Confirm steel delivery window", status: "open", assigneeId: "u-hana", dueDate: isoDate(now + 3 * day), updatedAt: now },
    ],
    expenses: [
      expense("northwind", "e-pump", "p-riverside", "u-ben", "Concrete pump rental (2 days)", 1_850, now - 3 * 60 * 60 * 1000),
      expense("northwind", "e-drone", "p-harbor", "u-chloe", "Survey drone batteries", 420, now - 90 * 60 * 1000),
      expense("globex", "e-rebar", "p-annex", "u-hana", "Rush rebar delivery", 12_400, now - 2 * 60 * 60 * 1000),
    ],
    invoices: [
      { companyId: "northwind", id: "i-atlas", projectId: "p-riverside", number: "INV-1042", vendor: "Atlas Concrete", amount: 18_500, status: "open", paidAt: null },
      { companyId: "globex", id: "i-steel", projectId: "p-annex", number: "INV-7781", vendor: "Steelworks Ltd", amount: 42_000, status: "open", paidAt: null },
    ],
    inventory: [
      item("northwind", "s-rebar", "RB-12", "Rebar 12 mm", "t", 14, 10, "Yard A", now),
      item("northwind", "s-cement", "CM-25", "Cement, 25 kg bags", "bag", 240, 200, "Warehouse", now),
      item("northwind", "s-helmet", "PPE-H", "Safety helmets", "pc", 25, 20, "Site office", now),
      item("northwind", "s-plywood", "PW-18", "Plywood sheets 18 mm", "sheet", 60, 40, "Yard B", now),
      item("globex", "s-beams", "SB-IPE", "Steel beams IPE 300", "pc", 30, 12, "Yard 1", now),
      item("globex", "s-gravel", "GR-20", "Gravel 20 mm", "t", 80, 50, "Yard 2", now),
    ],
    documents: [
      {
        companyId: "northwind",
        type: SITE_REPORT,
        id: "riverside-daily",
        projectId: "p-riverside",
        data: {
          title: "Riverside Tower: daily site report",
          weather: "Sunny, 18 °C, light wind",
          progress: "Level 12 formwork 80% done; rebar for the slab delivered.",
          notes: "Crane inspection at 14:00.",
        },
      },
      {
        companyId: "northwind",
        type: SITE_REPORT,
        id: "harbor-daily",
        projectId: "p-harbor",
        data: {
          title: "Harbor Bridge Retrofit: daily site report",
          weather: "Fog until 10:00, 11 °C",
          progress: "Span 3 bearings replaced; scaffolding moved to span 4.",
          notes: "Lane closure on the bridge until Friday.",
        },
      },
      {
        companyId: "globex",
        type: SITE_REPORT,
        id: "annex-daily",
        projectId: "p-annex",
        data: {
          title: "Globex HQ Annex: daily site report",
          weather: "Overcast, 12 °C",
          progress: "Ground floor columns poured.",
          notes: "Waiting for the steel delivery window.",
        },
      },
    ],
    assignments: [
      { companyId: "northwind", projectId: "p-riverside", userId: "u-sam" },
      { companyId: "globex", projectId: "p-hangar", userId: "u-ines" },
    ],
  };
}

/** A demo login, for the start banner and the login page. */
export interface DemoLogin {
  company: string;
  name: string;
  email: string;
  password: string;
  role: Role;
  /** For a subcontractor, the projects they are assigned to (all they can see); `null` for staff. */
  projects: string[] | null;
}

/** The demo logins, for the start banner and the READMEs. */
export function demoLogins(seed: SeedData = seedData()): DemoLogin[] {
  return seed.users.map((user) => ({
    company: seed.companies.find((company) => company.id === user.companyId)?.name ?? user.companyId,
    name: user.name,
    email: user.email,
    password: user.password,
    role: user.role,
    projects:
      user.role === "subcontractor"
        ? seed.assignments
            .filter((assignment) => assignment.userId === user.id)
            .map((assignment) => seed.projects.find((project) => project.id === assignment.projectId)?.name ?? assignment.projectId)
        : null,
  }));
}

function expense(companyId: string, id: string, projectId: string, submittedBy: string, description: string, amount: number, createdAt: number) {
  return { companyId, id, projectId, submittedBy, description, amount, status: "pending" as const, decidedBy: null, decidedAt: null, reason: null, createdAt };
}

function item(companyId: string, id: string, sku: string, name: string, unit: string, quantity: number, reorderLevel: number, location: string, now: number) {
  return { companyId, id, sku, name, unit, quantity, reorderLevel, location, updatedAt: now };
}

function isoDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

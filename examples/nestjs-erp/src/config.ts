/** Injection token of the app's {@link ErpConfig}. */
export const ERP_CONFIG = Symbol("ErpConfig");

/** What the app is started with. */
export interface ErpConfig {
  /** The HS256 secret for login tokens and socket handshakes. */
  jwtSecret: string;
  /** The SQLite file; default a fresh in-memory database. */
  databasePath?: string;
  /** `false` silences the engine's warnings (tests). */
  logger?: false;
}

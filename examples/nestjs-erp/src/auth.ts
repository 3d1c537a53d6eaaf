import {
  Body,
  Controller,
  createParamDecorator,
  HttpCode,
  Inject,
  Injectable,
  Post,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
} from "@nestjs/common";
import type { Principal } from "@truss/core";
import { createRequestVerifier, issueToken, verifyPassword, type RequestVerifier } from "@truss/example-construction-erp/auth";
import { ERP_CONFIG, type ErpConfig } from "./config.js";
import { ErpDatabase } from "./database.js";

interface AuthenticatedRequest {
  headers: Record<string, string | undefined>;
  ip?: string;
  principal?: Principal;
}

/**
 * Requires a valid bearer token, verified with the same authenticator the
 * Truss engine uses for sockets, and puts the principal on the request.
 */
@Injectable()
export class TokenGuard implements CanActivate {
  private readonly verify: RequestVerifier;

  constructor(@Inject(ERP_CONFIG) config: ErpConfig) {
    this.verify = createRequestVerifier(config.jwtSecret);
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    try {
      request.principal = await this.verify(request.headers.authorization, request.ip ?? "");
      return true;
    } catch (error) {
      throw new UnauthorizedException((error as Error).message);
    }
  }
}

/** The verified principal of a route behind {@link TokenGuard}. */
export const CurrentPrincipal = createParamDecorator((_data: unknown, context: ExecutionContext): Principal => {
  return context.switchToHttp().getRequest<AuthenticatedRequest>().principal!;
});

/** `POST /api/login`: the same logins and tokens as the Fastify demo. */
@Controller("api")
export class LoginController {
  constructor(
    @Inject(ErpDatabase) private readonly database: ErpDatabase,
    @Inject(ERP_CONFIG) private readonly config: ErpConfig,
  ) {}

  @Post("login")
  @HttpCode(200)
  login(@Body() body: { email?: unknown; password?: unknown }) {
    const found = typeof body?.email === "string" ? this.database.repos.users.findForLogin(body.email) : undefined;
    if (!found || typeof body.password !== "string" || !verifyPassword(body.password, found.passwordHash)) {
      throw new UnauthorizedException("Wrong email or password.");
    }
    const { passwordHash: _hash, ...user } = found;
    return { token: issueToken(user, this.config.jwtSecret), user };
  }
}

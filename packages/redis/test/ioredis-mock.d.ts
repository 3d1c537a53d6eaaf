// ioredis-mock ships no types of its own and `@types/ioredis-mock` is not a
// dependency here; the tests use it only as a stand-in for an ioredis client.
declare module "ioredis-mock" {
  import type { Redis, RedisOptions } from "ioredis";

  const RedisMock: new (options?: RedisOptions) => Redis;
  export default RedisMock;
}

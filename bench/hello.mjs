// The bench's yardstick: a fastify hello-world in its own process, on the same machine, measured
// in the same run as Latchkey, so a figure can be read as a share of what this box can serve.
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.get('/', async () => ({ hello: 'world' }));
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));

// The one logger: JSON lines (pino) for machines, readable lines (pino-pretty) on a terminal,
// with ISO times in both. LATCHKEY_LOG_FORMAT picks one; unset, a terminal gets pretty lines.
import tty from 'node:tty';
import pino, { type Logger, type LoggerOptions, type DestinationStream } from 'pino';
import pretty from 'pino-pretty';

export type LogFormat = 'json' | 'pretty';

// Never log a query string: reset links carry their token there.
const withoutQuery = (url: string) => url.split('?')[0];

export interface LogSettings {
  level: string;
  /** Unset: pretty when the destination is a terminal, else JSON. */
  format?: LogFormat;
  /** 1 for the server (stdout), 2 for the CLI, whose stdout is its JSON answer. */
  fd?: 1 | 2;
}

/** pino options with their stream, as fastify's `logger` option takes them. */
export function loggerOptions({ level, format, fd = 1 }: LogSettings): LoggerOptions & { stream: DestinationStream } {
  const terminal = tty.isatty(fd);
  const stream =
    (format ?? (terminal ? 'pretty' : 'json')) === 'pretty'
      ? pretty({
          destination: fd,
          // Synchronous, so the last lines before an exit are not lost.
          sync: true,
          colorize: terminal,
          translateTime: "UTC:yyyy-mm-dd'T'HH:MM:ss.l'Z'",
          ignore: 'pid,hostname',
        })
      : pino.destination({ dest: fd, sync: true });
  return {
    level,
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: ['req.headers.authorization', 'req.headers.cookie'],
    serializers: {
      req: (req) => ({ method: req.method, url: withoutQuery(req.url), remoteAddress: req.ip }),
    },
    stream,
  };
}

export function createLogger(settings: LogSettings): Logger {
  const { stream, ...options } = loggerOptions(settings);
  return pino(options, stream);
}

/** The stricter of two levels: the CLI shows warnings only, and nothing at all when told `silent`. */
export function atLeast(level: string, floor: string): string {
  const value = (name: string) => pino.levels.values[name] ?? Infinity;
  return value(level) >= value(floor) ? level : floor;
}

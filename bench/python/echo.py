"""Python echo servers for `spindle bench aio` (case echo_50conns).

    python3 echo.py --serve asyncio|threading [--port 0] [--host 127.0.0.1] [--prefix P]

Prints `listening on HOST:PORT` first, then answers every line received with
PREFIX + line until SIGTERM. Both are measured by the same client,
`spindle echo load` (spindle_aio::echo::load), as spindle's servers are.

  asyncio    asyncio.start_server; per connection readline / write / drain.
             A line over 64 KiB (StreamReader's default limit) closes it.
  threading  socketserver.ThreadingTCPServer, a thread per connection,
             TCP_NODELAY; the same 64 KiB line limit.
"""
import argparse
import asyncio
import signal
import socket
import socketserver
import sys

LIMIT = 64 * 1024


def listening(addr):
    print('listening on %s:%d' % (addr[0], addr[1]), flush=True)


def serve_asyncio(host, port, prefix):
    async def handle(reader, writer):
        sock = writer.get_extra_info('socket')
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                writer.write(prefix + line)
                await writer.drain()
        except (ValueError, ConnectionError):
            pass  # ValueError: a line over the limit
        finally:
            writer.close()

    async def main():
        server = await asyncio.start_server(handle, host, port, limit=LIMIT)
        listening(server.sockets[0].getsockname())
        stop = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
        async with server:
            await stop

    asyncio.run(main())


def serve_threading(host, port, prefix):
    class Handler(socketserver.StreamRequestHandler):
        def setup(self):
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().setup()

        def handle(self):
            try:
                while True:
                    line = self.rfile.readline(LIMIT + 1)
                    if not line or len(line) > LIMIT:
                        return
                    self.wfile.write(prefix + line)
            except ConnectionError:
                pass

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    def on_term(signum, frame):
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    with Server((host, port), Handler) as server:
        listening(server.server_address)
        server.serve_forever()


if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('--serve', choices=['asyncio', 'threading'], required=True)
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, default=0)
    p.add_argument('--prefix', default='')
    a = p.parse_args()
    prefix = a.prefix.encode()
    if a.serve == 'asyncio':
        serve_asyncio(a.host, a.port, prefix)
    else:
        serve_threading(a.host, a.port, prefix)

"""A real HTTP server on 127.0.0.1 that speaks the chat-completions protocol, scripted per test.

Each request takes the next scripted behaviour (then the default): a reply text, an HTTP status with headers (and
optionally the error body a real server would send), a stall longer than the client's timeout, a dropped
connection, or a delay before a good reply. The server counts requests, and counts them per prompt, so tests can
prove nothing was sent twice. `reject_max_tokens` answers `max_tokens` as newer OpenAI models do (400, asking for
`max_completion_tokens`).
"""

import hashlib
import json
import re
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

DISTRACTOR_LINE = re.compile(r"^(\d+)\. (.*)$", re.MULTILINE)


def default_scores(prompt: str) -> list[float]:
    """4 for distractors with "bra" ("good"), 1 for ones with "dålig" ("bad"), else 3."""
    lines = prompt.split("Distractors:", 1)[-1]
    texts = [m.group(2) for m in DISTRACTOR_LINE.finditer(lines)]
    return [4.0 if "bra" in t else 1.0 if "dålig" in t else 3.0 for t in texts]


def good_reply(prompt: str) -> str:
    scores = default_scores(prompt)
    return "Distractor by distractor, step by step: they look fine.\n$" + json.dumps(scores) + "$"


class FakeOpenAI:
    def __init__(self, models: tuple[str, ...] = ("judge-model",), api_key: str = "test-key",
                 default: Callable[[str], str] = good_reply, delay: float = 0.0, reject_max_tokens: bool = False) -> None:
        self.models, self.api_key, self.default, self.delay = models, api_key, default, delay
        self.reject_max_tokens = reject_max_tokens
        self.script: list[tuple] = []
        self.lock = threading.Lock()
        self.requests = 0
        self.per_prompt: Counter = Counter()
        self.per_question: Counter = Counter()  # by the "Question: ..." line of the prompt
        self.prompts: list[str] = []
        self.bodies: list[dict] = []
        self.auth_headers: list[str] = []
        self.arrivals: list[float] = []  # time.time() of every chat request, for throughput seen from the server
        ThreadingHTTPServer.request_queue_size = 512  # many clients connect at once (the default backlog is 5)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> "FakeOpenAI":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def then(self, *behaviours: tuple) -> "FakeOpenAI":
        with self.lock:
            self.script.extend(behaviours)
        return self

    def _next(self) -> tuple:
        with self.lock:
            self.requests += 1
            return self.script.pop(0) if self.script else ("default",)

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body go out in two writes: with Nagle's algorithm on, the second waits for the client's
            # delayed ACK (40 ms), and a "200 ms" server would answer in 240 ms
            disable_nagle_algorithm = True

            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.endswith("/stats"):  # what a benchmark reads from a server in another process
                    with fake.lock:
                        stats = {"arrivals": fake.arrivals, "per_question": dict(fake.per_question)}
                    return self._send(200, stats)
                self._send(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in fake.models]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                fake.auth_headers.append(self.headers.get("Authorization", ""))
                if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    return self._send(401, {"error": {"message": "Incorrect API key", "code": "invalid_api_key"}})
                if body.get("model") not in fake.models:
                    return self._send(404, {"error": {"message": "model not found", "code": "model_not_found"}})
                if fake.reject_max_tokens and "max_tokens" in body:
                    return self._send(400, {"error": {
                        "message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                                   "'max_completion_tokens' instead.", "type": "invalid_request_error",
                        "param": "max_tokens", "code": "unsupported_parameter"}})
                self.completions = self.path.endswith("/completions") and not self.path.endswith("/chat/completions")
                prompt = body["prompt"] if self.completions else body["messages"][0]["content"]
                with fake.lock:
                    fake.arrivals.append(time.time())
                    fake.prompts.append(prompt)
                    fake.bodies.append(body)
                    fake.per_prompt[hashlib.sha256(prompt.encode()).hexdigest()] += 1
                    question = re.search(r"^Question: (.*)$", prompt, re.MULTILINE)
                    fake.per_question[question.group(1) if question else ""] += 1
                self._behave(fake._next(), body, prompt)

            def _behave(self, behaviour: tuple, body: dict, prompt: str) -> None:
                kind = behaviour[0]
                if kind == "status":
                    code, headers = behaviour[1], behaviour[2]
                    error = behaviour[3] if len(behaviour) > 3 else {"error": {"message": f"scripted {code}"}}
                    return self._send(code, error, headers)
                if kind == "drop":  # close the socket without an answer
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return None
                if kind == "stall":
                    time.sleep(behaviour[1])
                    self.close_connection = True
                    return None
                text = behaviour[1] if kind == "reply" else fake.default(prompt)
                if fake.delay:
                    time.sleep(fake.delay)
                try:
                    self._answer(body, prompt, text)
                except BrokenPipeError:
                    pass  # the client is gone (killed or timed out)

            def _answer(self, body: dict, prompt: str, text: str) -> None:
                choice = ({"index": 0, "finish_reason": "stop", "text": text} if self.completions else
                          {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}})
                self._send(200, {
                    "id": "cmpl-1", "object": "text_completion" if self.completions else "chat.completion",
                    "created": int(time.time()), "model": body["model"], "choices": [choice],
                    "usage": {"prompt_tokens": len(prompt) // 4, "completion_tokens": len(text) // 4,
                              "total_tokens": len(prompt) // 4 + len(text) // 4},
                })

        return Handler


def generator_reply(prompt: str) -> str:
    """Two distractors of the item's own (distinct per question), as a generator answers."""
    question = re.search(r"<question> (.*?) </question>", prompt)
    tag = hashlib.sha256((question.group(1) if question else prompt).encode()).hexdigest()[:6]
    return f"<false> påhitt {tag} ett </false>\n<false> påhitt {tag} två </false>\n"


def start_process(port_file, delay: float = 0.0, mode: str = "judge"):
    """A server in its own process (to be killed with -9): (the process, its base URL)."""
    import subprocess
    import sys
    from pathlib import Path

    process = subprocess.Popen([sys.executable, __file__, str(delay), str(port_file), mode])
    deadline = time.monotonic() + 30
    while not Path(port_file).exists() or not Path(port_file).read_text():
        assert time.monotonic() < deadline and process.poll() is None, "the fake server did not start"
        time.sleep(0.02)
    return process, Path(port_file).read_text()


if __name__ == "__main__":  # a server in its own process: python tests/fake_openai.py DELAY PORT_FILE [MODE]
    import sys
    from pathlib import Path

    mode = sys.argv[3] if len(sys.argv) > 3 else "judge"
    server = FakeOpenAI(models=("judge-model", "gen-model"), delay=float(sys.argv[1]),
                        default=generator_reply if mode == "generator" else good_reply).start()
    Path(sys.argv[2] + ".tmp").write_text(server.url)
    Path(sys.argv[2] + ".tmp").rename(sys.argv[2])  # whole, or not there yet
    server.thread.join()

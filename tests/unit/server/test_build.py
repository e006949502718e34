"""The core build: what must be ready before the gateway serves its first request."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.paths import ROOT


def test_the_tokenizers_metering_counts_with_are_loaded_before_serving(tmp_path: Path) -> None:
    # A fresh process: in this one another test may have loaded them already.
    probe = textwrap.dedent(
        f"""
        import asyncio
        from server import tokens
        from server.build import build_gateway
        from server.config import load_config

        async def main():
            config = load_config({str(tmp_path / "siraya.yaml")!r})
            assert tokens.encoding.cache_info().currsize == 0
            gateway = await build_gateway(config)
            print(tokens.encoding.cache_info().currsize)
            await gateway.close()

        asyncio.run(main())
        """
    )
    (tmp_path / "siraya.yaml").write_text(
        f"server: {{data_dir: {str(tmp_path / 'data')!r}}}\n"
        "providers: {up: {type: openai, base_url: 'http://127.0.0.1:9/v1', api_key: sk-x}}\n"
        "models: [{id: m, provider: up, upstream_model: m, kind: chat, pricing: free}]\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) >= 1

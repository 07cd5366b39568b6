"""FastAgent agents for Daedalus tests: no language model, every reply is predictable.

Served with `python agents.py --transport http --host 127.0.0.1 --port P`
(tests/services/fastagent.sh does this). Each agent is one MCP tool taking
{"message": string}.
"""

import asyncio

from fast_agent import FastAgent

fast = FastAgent("daedalus-test-agents")


async def sleep_seconds(seconds: float) -> str:
    """Sleep for the given number of seconds, then say so."""
    await asyncio.sleep(seconds)
    return f"slept {seconds} seconds"


@fast.agent(name="echo", instruction="Repeat the message.", model="passthrough")
@fast.agent(name="slow", instruction="Repeat the message, slowly.", model="slow")
@fast.agent(
    name="sleeper",
    instruction="Call sleep_seconds when asked to.",
    model="passthrough",
    function_tools=[sleep_seconds],
)
@fast.chain(name="pipeline", sequence=["echo", "sleeper"])
@fast.router(name="dispatcher", agents=["echo", "slow"], model="passthrough")
@fast.parallel(name="fanout", fan_out=["echo", "slow"])
async def main() -> None:
    async with fast.run() as agent:
        await agent.interactive()


if __name__ == "__main__":
    asyncio.run(main())

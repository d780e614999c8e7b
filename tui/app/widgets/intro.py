"""What a person sees before their first run: how to run, and which models are simulated and
which environment variable makes each real.

``render_intro(session, render_providers(session))`` is plain Text (provider names and variables come from routes.toml:
cleaned, never markup); the main screen shows it where the panes will be, and the help screen
repeats the simulator part (``render_providers``).
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text

from tui.router.sanitize import clean
from tui.router.types import split_model_id


@dataclass(frozen=True)
class ProviderState:
    name: str
    simulated: bool
    variable: str | None  # the NAME of the variable holding the key (None: no key needed)
    why: str | None  # why it is simulated, as the engine says it


def provider_states(session) -> list[ProviderState]:
    """One entry per provider the table's models use, in order of first use."""
    table = session.table
    states: dict[str, ProviderState] = {}
    for model in table.models():
        try:
            name, _ = split_model_id(model)
        except ValueError:
            continue
        if name in states or name not in table.providers:
            continue
        simulated, why = session.is_simulated(model)
        states[name] = ProviderState(name, simulated, table.providers[name].api_key_env, why)
    return list(states.values())


def _forced(states: list[ProviderState]) -> bool:
    return any(s.why and s.why.startswith("simulation forced") for s in states)


def render_providers(session) -> Text:
    """Which providers run on the simulator, and the variable that makes each one real."""
    states = provider_states(session)
    out = Text()
    simulated = [s for s in states if s.simulated]
    real = [s for s in states if not s.simulated]
    if _forced(states):
        out.append("Every model is simulated", style="bold yellow")
        out.append(" (ROUTEDECK_SIMULATE=1 or --simulate). Without that, these variables make "
                   "models real: ")
    elif simulated:
        out.append("Models without an API key run on a local simulator", style="bold yellow")
        out.append(" (made-up answers and timings, marked SIMULATED). Set the variable to "
                   "make them real: ")
    for i, s in enumerate(simulated):
        out.append(", " if i else "")
        out.append(clean(s.name), style="bold")
        if s.variable:
            out.append(f" ← {clean(s.variable)}")
        elif s.why:
            out.append(f" ({clean(s.why)})", style="dim")
    if real:
        out.append("\n" if simulated else "")
        out.append("Real: ", style="bold green")
        out.append(", ".join(clean(s.name) for s in real))
    return out


def render_intro(session, providers: Text | None = None) -> Text:
    """The intro; ``providers`` is :func:`render_providers`'s text, or None while it is being
    worked out (it imports the provider clients: done in a thread, after the first frame)."""
    table = session.table
    out = Text()
    out.append("No run yet. ", style="bold")
    out.append("Type a prompt: its task type and route show as you type. ctrl+j runs it on the "
               "routed model and on the baseline ")
    out.append(clean(table.baseline.model), style="bold")
    out.append(", side by side.\n\n")
    if providers is None:
        out.append("checking which models have an API key…", style="dim")
    else:
        out.append_text(providers)
    out.append("\n\nf1 every key · f2 the routing grid · f5 what routing saves", style="dim")
    return out

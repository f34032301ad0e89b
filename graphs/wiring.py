"""From a run request to the compiled self-play graph: the agents of each role, few-shot
style, summaries and the judge, bound to a started (or startable) backend."""

from __future__ import annotations

from sparring.agents.backends import Backend
from sparring.agents.critic import CriticAgent
from sparring.agents.domain import DialogueJob
from sparring.agents.judge import JudgeAgent
from sparring.agents.persona import PersonaAgent
from sparring.agents.planner import PlannerAgent
from sparring.agents.reviser import ReviserAgent
from sparring.diasynth_agents.fewshot import style_instruction

from .config import RunConfig
from .run_request import RunRequest
from .selfplay import SelfPlay, SelfPlayAgents


def make_agents(config: RunConfig, backend: Backend) -> SelfPlayAgents:
    s, guidance = config.sampling, config.dialogue.critic_guidance
    return SelfPlayAgents(planner=PlannerAgent(backend, s.planner), persona=PersonaAgent(backend, s.persona),
                          critic=CriticAgent(backend, s.critic, guidance=guidance),
                          reviser=ReviserAgent(backend, s.reviser),
                          verifier=CriticAgent(backend, s.verifier, name="verifier", guidance=guidance))


def make_selfplay(request: RunRequest, backend: Backend) -> SelfPlay:
    cfg = request.config
    pool = request.few_shot

    def style(job: DialogueJob) -> str | None:
        return style_instruction(pool.get(job.few_shot_id)) if job.few_shot_id else None

    return SelfPlay(agents=make_agents(cfg, backend), principles=request.principles, settings=cfg.dialogue,
                    characteristics=[(c.name, c.description) for c in cfg.dialogue.planner_characteristics()],
                    style_example=style, summary_params=cfg.sampling.summary if cfg.dialogue.summaries else None,
                    judge=JudgeAgent(backend, cfg.sampling.judge, cfg.dialogue.judge) if cfg.dialogue.judge else None)

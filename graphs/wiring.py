"""From a run request to the compiled self-play graph: the agents of each role on the backend the
config gives that role (or all on one backend given), few-shot style, summaries and the judge."""

from __future__ import annotations

from sparring.agents.backends import Backend
from sparring.agents.critic import CriticAgent
from sparring.agents.domain import DialogueJob
from sparring.agents.geval_judge import JudgeAgent
from sparring.agents.persona import PersonaAgent
from sparring.agents.planner import PlannerAgent
from sparring.agents.redteam import AttackPlanner, RedTeamAgents, TargetAgent
from sparring.agents.reviser import ReviserAgent
from sparring.diasynth_agents.fewshot import style_instruction

from .roles import models_by_role, named_backends, targets
from .run_config import RunConfig
from .runtime.role_backends import RoleBackends
from .runtime.run_request import RunRequest
from .selfplay import SelfPlay, SelfPlayAgents
from .shared_plans import SharedPlans


def make_agents(config: RunConfig, backends: RoleBackends | Backend) -> SelfPlayAgents:
    """Each agent on its role's backend (roles on one backend share it); one ``Backend``: every role on it."""
    backends = _by_role(config, backends)
    s, guidance, reask = config.sampling, config.dialogue.critic_guidance, config.dialogue.reask_cut_turns
    redteam = None
    if config.dialogue.mode == "redteam":
        redteam = RedTeamAgents(planner=AttackPlanner(backends["planner"], s.planner,
                                                      config.dialogue.attacker_sees_system_prompt),
                                target=TargetAgent(backends["side_b"], s.target),
                                targets={name: TargetAgent(backends.backends[name], s.target)
                                         for name in targets(config) or ()})
    return SelfPlayAgents(planner=PlannerAgent(backends["planner"], s.planner),
                          persona=PersonaAgent(backends["side_a"], s.persona, reask),
                          persona_b=PersonaAgent(backends["side_b"], s.persona, reask),
                          critic=CriticAgent(backends["critic"], s.critic, guidance=guidance),
                          reviser=ReviserAgent(backends["reviser"], s.reviser),
                          verifier=CriticAgent(backends["verifier"], s.verifier, name="verifier", guidance=guidance),
                          summary=backends.get("summary"), redteam=redteam)


def _by_role(config: RunConfig, backends: RoleBackends | Backend) -> RoleBackends:
    return backends if isinstance(backends, RoleBackends) else RoleBackends.of(config, backends)


def make_selfplay(request: RunRequest, backends: RoleBackends | Backend) -> SelfPlay:
    cfg = request.config
    backends = _by_role(cfg, backends)
    pool = request.few_shot

    def style(job: DialogueJob) -> str | None:
        return style_instruction(pool.get(job.few_shot_id)) if job.few_shot_id else None

    judge = backends.get("judge")
    return SelfPlay(agents=make_agents(cfg, backends), principles=request.principles, settings=cfg.dialogue,
                    characteristics=[(c.name, c.description) for c in cfg.dialogue.planner_characteristics()],
                    style_example=style, summary_params=cfg.sampling.summary if cfg.dialogue.summaries else None,
                    judge=JudgeAgent(judge, cfg.sampling.judge, cfg.dialogue.judge)
                    if cfg.dialogue.judge and judge is not None else None,
                    models=models_by_role(cfg), plans=SharedPlans() if targets(cfg) else None,
                    target_models={name: named_backends(cfg)[name].model_name() for name in targets(cfg) or ()})

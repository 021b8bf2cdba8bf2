"""The offline simulator as a vendor: OpenAI-compatible, served in-process by ``interlock.simulator``."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from interlock.config import VendorConfig, VendorType
from interlock.configfile import Section
from interlock.core.usage import usage_from_openai
from interlock.core.vendor import VendorSpec
from interlock.vendors.declaration import VendorPackage
from interlock.vendors.openai_compat import settings as openai_settings
from interlock.vendors.openai_compat.chat import OpenAICompatAdapter
from interlock.vendors.openai_compat.embeddings import OpenAICompatEmbedder
from interlock.vendors.openai_compat.settings import OpenAICompatSettings
from interlock.vendors.transport import Transport

#: Labs whose models the simulator answers with logprobs: OpenAI's chat models return them.
SIMULATED_LOGPROB_LABS = frozenset({"openai"})


def simulator_logprobs(model_id: str) -> bool:
    """Whether the simulator generates logprobs for this catalog model (``lab/model``)."""
    return model_id.partition("/")[0] in SIMULATED_LOGPROB_LABS


@dataclass(frozen=True, slots=True)
class SimulatorVendorSettings(OpenAICompatSettings):
    """The simulator needs no credential: it runs whenever it is enabled."""

    decides_liveness: ClassVar[bool] = True


def _read(spec: VendorSpec, section: Section | None, environ: Mapping[str, str],
          base_url: str | None) -> tuple[SimulatorVendorSettings, str | None]:
    settings, base_url = openai_settings.read(spec, section, environ, base_url)
    # A further simulated instance (``type: simulator``, say one per region) is served in-process too.
    return SimulatorVendorSettings(settings.api_version, settings.deployments), base_url or SIMULATED_URL


def _chat(vendor: VendorConfig, transport: Transport) -> OpenAICompatAdapter:
    return OpenAICompatAdapter(vendor, transport, logprobs=simulator_logprobs)


def _logprobs(spec: VendorSpec, vendor_model: str) -> bool:
    return simulator_logprobs(vendor_model)


SIMULATED_URL = "http://simulator.internal/v1"

VENDOR: VendorPackage = VendorPackage(
    type="simulator",
    specs=(VendorSpec("simulator", "Simulator (offline)", "simulator", SIMULATED_URL,
                      needs_key=False, auth="none", via_tools=frozenset({"structured_outputs"})),),
    chat=_chat,
    usage=(usage_from_openai,),
    # custom: ``sim-eu: {type: simulator, regions: [eu-central-1]}`` adds a simulated instance, whose catalog
    # routes the config lists (``catalog.models.<id>.routes.sim-eu``), so every path is testable offline.
    settings=VendorType(openai_settings.KEYS, _read, custom=True),
    embedder=OpenAICompatEmbedder,
    logprobs=_logprobs,
    in_process=True,
)

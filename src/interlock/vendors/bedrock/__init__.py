"""AWS Bedrock: the Converse API and embeddings, signed with SigV4."""

from interlock.core.vendor import VendorSpec
from interlock.vendors.bedrock.catalog_ids import CATALOG_IDS
from interlock.vendors.bedrock.chat import BedrockAdapter
from interlock.vendors.bedrock.embeddings import BedrockEmbedder
from interlock.vendors.bedrock.settings import SETTINGS
from interlock.vendors.bedrock.usage import usage_from_bedrock
from interlock.vendors.declaration import VendorPackage

VENDOR: VendorPackage = VendorPackage(
    type="bedrock",
    specs=(VendorSpec("bedrock", "AWS Bedrock", "bedrock", None, (), auth="sigv4",
                      docs="https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html",
                      via_tools=frozenset({"structured_outputs"})),),
    chat=BedrockAdapter,
    usage=(usage_from_bedrock,),
    settings=SETTINGS,
    embedder=BedrockEmbedder,
    catalog_ids={"bedrock": CATALOG_IDS},
)

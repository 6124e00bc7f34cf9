"""deploy/cloudformation/registry.yaml: its table is the schema's, its policies are the code's.

The table's properties are built from realtime/registry/dynamodb/schema.py (the definition
create_ws_table creates from), and the stack is deployed into moto's CloudFormation and
compared with a table create_ws_table made. Each policy's actions are derived from the code
(tests/deploy/registry_calls.py): a new DynamoDB call, or a new use of a registry method
that makes one, fails here until the policy allows it, and an action no code needs fails
too. cfn-lint checks the template itself, in CI (.ci/run).
"""

import io
import json
from pathlib import Path

import boto3
import pytest
from cfnlint.decode import decode
from django.core.management import call_command

from realtime.registry.dynamodb.schema import (
    ATTRIBUTE_DEFINITIONS,
    BILLING_MODE,
    GLOBAL_SECONDARY_INDEXES,
    KEY_SCHEMA,
    TTL_ATTRIBUTE,
)
from tests.deploy.registry_calls import (
    REALTIME,
    operations_of_methods,
    registry_methods_used,
    transaction_parts,
)

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "deploy" / "cloudformation" / "registry.yaml"

# Uses of the registry that never run against AWS: the development server creates its table
# on a local endpoint (startup.py when DEBUG and DYNAMODB_ENDPOINT_URL are set, and the serve
# command). Listed here so that no policy grants CreateTable to the servers for them; a test
# below fails when one of them is gone, so that the list cannot outlive its reason.
DEVELOPMENT_ONLY = {
    ("create_table", "server/startup.py"),
    ("create_table", "management/commands/serve.py"),
}
# IAM has no action for a transaction: it authorises each write inside it.
TRANSACTION_PART_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
TABLE_ARN = {"Fn::GetAtt": ["RegistryTable", "Arn"]}
INDEX_ARNS = [
    {"Fn::Sub": "${RegistryTable.Arn}/index/" + index["IndexName"]}
    for index in GLOBAL_SECONDARY_INDEXES
]


def load_template() -> dict:
    template, problems = decode(str(TEMPLATE_PATH))
    assert not problems, problems
    return template


def the_table(template: dict) -> dict:
    tables = {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::DynamoDB::Table"
    }
    assert list(tables) == ["RegistryTable"]
    return tables["RegistryTable"]


def policy_statements(template: dict, name: str) -> list[dict]:
    policy = template["Resources"][name]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy"
    return policy["Properties"]["PolicyDocument"]["Statement"]


def granted_actions(template: dict, name: str) -> set[str]:
    statements = policy_statements(template, name)
    assert all(s["Effect"] == "Allow" for s in statements)
    return {action for s in statements for action in s["Action"]}


def iam_actions(operations: set[str]) -> set[str]:
    """The IAM actions that the DynamoDB API operations need."""
    actions = set()
    for operation in operations:
        if operation == "TransactWriteItems":
            actions |= {TRANSACTION_PART_ACTIONS[part] for part in transaction_parts()}
        else:
            actions.add(operation)
    return {f"dynamodb:{action}" for action in actions}


def uses(*folders: str) -> dict[str, set[str]]:
    """Registry method -> files using it, under the given folders of realtime/, development
    uses left out."""
    paths = [path for folder in folders for path in (REALTIME / folder).rglob("*.py")]
    used = registry_methods_used(paths)
    for method, path in DEVELOPMENT_ONLY:
        used.get(method, set()).discard(path)
    return {method: files for method, files in used.items() if files}


def server_calls() -> set[str]:
    # The server process: sockets (server/) and what it serves over HTTP (operate/).
    return operations_of_methods(uses("server", "operate"))


def operator_calls() -> set[str]:
    return operations_of_methods(uses("management"))


# --- the table --------------------------------------------------------------------------


def test_the_template_declares_the_table_the_schema_defines():
    properties = dict(the_table(load_template())["Properties"])
    assert properties.pop("TableName") == {"Ref": "TableName"}
    assert properties.pop("PointInTimeRecoverySpecification") == {
        "PointInTimeRecoveryEnabled": True
    }
    assert properties == {
        "BillingMode": BILLING_MODE,
        "KeySchema": KEY_SCHEMA,
        "AttributeDefinitions": ATTRIBUTE_DEFINITIONS,
        "GlobalSecondaryIndexes": GLOBAL_SECONDARY_INDEXES,
        "TimeToLiveSpecification": {"AttributeName": TTL_ATTRIBUTE, "Enabled": True},
    }


def test_the_table_outlives_its_stack():
    table = the_table(load_template())
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"


def table_shape(client, name: str) -> dict:
    table = client.describe_table(TableName=name)["Table"]
    return {
        "KeySchema": table["KeySchema"],
        "AttributeDefinitions": sorted(
            table["AttributeDefinitions"], key=lambda a: a["AttributeName"]
        ),
        "BillingMode": table["BillingModeSummary"]["BillingMode"],
        "GlobalSecondaryIndexes": sorted(
            (
                {k: index[k] for k in ("IndexName", "KeySchema", "Projection")}
                for index in table["GlobalSecondaryIndexes"]
            ),
            key=lambda i: i["IndexName"],
        ),
        "Arn": table["TableArn"],
    }


def test_the_stack_deploys_the_table_create_ws_table_creates(aws):
    iam = boto3.client("iam", region_name="us-east-1")
    for role in ("realtime-server", "realtime-operator"):
        iam.create_role(RoleName=role, AssumeRolePolicyDocument="{}")
    stacks = boto3.client("cloudformation", region_name="us-east-1")
    stacks.create_stack(
        StackName="registry",
        TemplateBody=TEMPLATE_PATH.read_text(),
        Parameters=[
            {"ParameterKey": "TableName", "ParameterValue": "from_the_stack"},
            {"ParameterKey": "ServerRoleName", "ParameterValue": "realtime-server"},
            {"ParameterKey": "OperatorRoleName", "ParameterValue": "realtime-operator"},
        ],
    )
    stack = stacks.describe_stacks(StackName="registry")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}

    call_command("create_ws_table", "--table", "from_the_command", stdout=io.StringIO())
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    from_stack = table_shape(dynamodb, "from_the_stack")
    from_command = table_shape(dynamodb, "from_the_command")
    assert from_stack.pop("Arn") == outputs["TableArn"]
    from_command.pop("Arn")
    assert from_stack == from_command

    # Each role has its policy, on the stack's table and indexes, with its actions.
    template = load_template()
    for role, policy, output in (
        ("realtime-server", "ServerPolicy", "ServerPolicyArn"),
        ("realtime-operator", "OperatorPolicy", "OperatorPolicyArn"),
    ):
        attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
        assert [p["PolicyArn"] for p in attached] == [outputs[output]]
        version = iam.get_policy(PolicyArn=outputs[output])["Policy"]["DefaultVersionId"]
        document = iam.get_policy_version(PolicyArn=outputs[output], VersionId=version)
        statements = document["PolicyVersion"]["Document"]
        if isinstance(statements, str):
            statements = json.loads(statements)
        resources = {frozenset(s["Action"]): s["Resource"] for s in statements["Statement"]}
        indexes = [
            f"{outputs['TableArn']}/index/{i['IndexName']}" for i in GLOBAL_SECONDARY_INDEXES
        ]
        assert resources == {
            frozenset(granted_actions(template, policy) - {"dynamodb:Query"}): outputs["TableArn"],
            frozenset({"dynamodb:Query"}): indexes,
        }


# --- the policies -------------------------------------------------------------------------


def test_the_call_analysis_finds_what_the_registry_calls():
    # The oracle itself, on calls whose operations are known.
    assert operations_of_methods(["register"]) == {"PutItem", "TransactWriteItems"}
    assert operations_of_methods(["aderegister"]) >= {"BatchWriteItem", "DeleteItem"}
    assert operations_of_methods(["describe_table"]) == {"DescribeTable"}
    assert operations_of_methods(["counts"]) == {"Query", "Scan"}
    assert "CreateTable" in operations_of_methods(["create_table"])
    assert transaction_parts() == {"Put", "Update"}


def test_the_server_policy_allows_exactly_what_the_server_calls():
    assert granted_actions(load_template(), "ServerPolicy") == iam_actions(server_calls())


def test_the_operator_policy_allows_exactly_what_the_operator_commands_call():
    assert granted_actions(load_template(), "OperatorPolicy") == iam_actions(operator_calls())


def test_only_operators_change_the_table():
    server = iam_actions(server_calls())
    operator = iam_actions(operator_calls())
    table_changes = {
        "dynamodb:CreateTable",
        "dynamodb:UpdateTable",
        "dynamodb:UpdateTimeToLive",
        "dynamodb:DescribeTimeToLive",
    }
    assert table_changes <= operator
    assert not table_changes & server
    # As the README says: the all-tenants overview (/api/stats, the Tenants page) scans.
    assert {"counts", "acounts"} <= uses("operate").keys()
    assert "Scan" in operations_of_methods(["counts"])


@pytest.mark.parametrize("policy", ["ServerPolicy", "OperatorPolicy"])
def test_queries_reach_the_indexes_and_every_other_call_only_the_table(policy):
    for statement in policy_statements(load_template(), policy):
        if statement["Action"] == ["dynamodb:Query"]:
            assert statement["Resource"] == INDEX_ARNS
        else:
            assert "dynamodb:Query" not in statement["Action"]
            assert statement["Resource"] == TABLE_ARN


def test_the_development_only_uses_are_still_there():
    paths = [
        *REALTIME.joinpath("server").rglob("*.py"),
        *REALTIME.joinpath("management").rglob("*.py"),
    ]
    used = registry_methods_used(paths)
    for method, path in DEVELOPMENT_ONLY:
        assert path in used.get(method, set()), f"{path} no longer calls {method}: drop it"

"""The Ray layer: a `WorkflowSupervisor` per enabled workflow consumes its inbox;
pooled `ExecutionActor`s run executions; `actors.control` is what the ingress
uses to reach them."""

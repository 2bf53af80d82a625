"""The knowledge-grounded method: plan a request, then answer it.

* :mod:`~app.grounding.service` plans a request (mode, retrieval, prompt, technique) into a
  :class:`~app.grounding.plan.GroundingPlan`;
* :mod:`~app.grounding.queries` and :mod:`~app.grounding.batcher` build and batch the
  retrieval queries;
* :mod:`~app.grounding.prompt` puts the retrieved knowledge into the conversation;
* :mod:`~app.grounding.respond` sends the plan upstream and turns the reply into a JSON or
  streaming response (:mod:`~app.grounding.stream`), removing the knowledge block
  (:mod:`~app.grounding.knowledge_block`);
* :mod:`~app.grounding.techniques` are the ways ``grounded`` makes the knowledge count.
"""

"""A deployment's engine as Ray Serve replicas (the ``ray`` extra).

``settings`` the application's arguments; ``load`` what replicas report of their load and how
it adds up (pure); ``openai_app`` the OpenAI-compatible routes around one engine; ``board`` the
deployment that collects the replicas' reports; ``replica`` the embedded llama.cpp engine as a
Serve deployment; ``vllm`` vLLM through ``ray.serve.llm``; ``app`` the import path
(``inferplane.ray.app:build``) that puts them together. Only ``replica``, ``board``, ``vllm``
and ``app`` import Ray.
"""

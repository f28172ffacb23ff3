//! `pass`: the bare worker in idiomatic workers-rs. The request body is read as text
//! (`Request::text`), POSTed with `worker::Fetch`; a non-streamed answer is read whole
//! (`Response::text`, which reads the body's stream chunk by chunk into Rust) and sent back as a
//! fixed body; a streamed one is handed on as the upstream's `ReadableStream`, never entering
//! Rust (the bare worker's `new Response(r.body)`). With the `json` feature (the `translate`
//! build) the texts go through [`super::translate`] on the way.

use worker::{event, Context, Env, Error, Request, Response, ResponseBody, Result};

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let (body, stream) = super::translate::request(req.text().await?).map_err(Error::from)?;
    let mut upstream = super::upstream::post(&env, &body).await?;
    let status = upstream.status_code();
    if stream {
        let stream = match upstream.body() {
            ResponseBody::Stream(s) => ResponseBody::Stream(s.clone()),
            _ => ResponseBody::Empty,
        };
        return Ok(Response::builder()
            .with_status(status)
            .with_header("content-type", "text/event-stream")?
            .body(stream));
    }
    let text = super::translate::answer(upstream.text().await?).map_err(Error::from)?;
    Ok(Response::builder()
        .with_status(status)
        .with_header("content-type", "application/json")?
        .fixed(text.into_bytes()))
}

namespace PageAlloc.Api.Infrastructure;

/// <summary>
/// A refusal answered before the request's body was read (415, 401, 403, 429): Kestrel would try to
/// read and discard the body after the answer, and close the connection without saying so when the
/// body passes the endpoint's size limit. Such an answer says <c>Connection: close</c> instead, and
/// the connection is closed after it, whatever the body's size.
/// </summary>
public static class UnreadBody
{
    public static void CloseConnection(HttpContext context)
    {
        var request = context.Request;
        if (request.ContentLength is > 0 || request.Headers.TransferEncoding.Count > 0)
        {
            context.Response.Headers.Connection = "close";
        }
    }
}
